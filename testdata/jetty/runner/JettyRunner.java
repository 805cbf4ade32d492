// A jetty-runner with the command line of the one Steam ships
// (java -jar jetty-runner.jar [--host H] [--port N] app.war): a real Jetty
// 9.4 Server with one WebAppContext for the war at "/". steam-overseer's
// tests start it with Steam's exact argv. Like jetty-runner it binds every
// interface unless --host names one, logs through Jetty's own StdErrLog
// ("Started @", "Failed startup of context") and stops Jetty on SIGINT or
// SIGTERM through the JVM's shutdown hooks.
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.webapp.WebAppContext;

public final class JettyRunner {
    private JettyRunner() {}

    public static void main(String[] args) throws Exception {
        int port = 8080;
        String host = null;
        String war = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--port") && i + 1 < args.length) {
                port = Integer.parseInt(args[++i]);
            } else if (a.equals("--host") && i + 1 < args.length) {
                host = args[++i];
            } else if (a.startsWith("--") && i + 1 < args.length) {
                i++; // jetty-runner's other options take a value; none matters here
            } else {
                war = a;
            }
        }
        if (war == null) {
            System.err.println("Usage: java -jar jetty-runner.jar [--host name|ip] [--port n] app.war");
            System.exit(1);
        }

        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setPort(port);
        connector.setHost(host);
        server.addConnector(connector);

        WebAppContext context = new WebAppContext();
        context.setContextPath("/");
        context.setWar(war);
        server.setHandler(context);
        // jetty-runner's behaviour on SIGINT: Jetty stops, the JVM exits.
        server.setStopAtShutdown(true);
        server.setStopTimeout(15000);

        try {
            server.start();
        } catch (Exception e) {
            // A taken port: Jetty has logged the BindException; exit 1 as
            // jetty-runner does.
            e.printStackTrace();
            server.stop();
            System.exit(1);
        }
        server.join();
    }
}
