// A real JVM serving HTTP as a scoring deployment does: the units test runs
// it under the remediator's SystemCallFilter= and expects GET /ping to
// answer 200. Run with the source launcher: java Ping.java PORT.
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.util.concurrent.Executors;

public class Ping {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])), 0);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/ping", exchange -> {
            byte[] body = "pong\n".getBytes();
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        System.out.println("Started @" + ProcessHandle.current().pid());
    }
}
