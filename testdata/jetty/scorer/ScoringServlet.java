// A scoring service like the wars Steam builds for a model: /ping, /predict,
// /predictbinary, /stats and /info. How it behaves is read from the war itself
// (WEB-INF/scorer.properties), so that Steam's argv stays exactly Steam's and
// a restarted deployment behaves the same again:
//
//   mode=normal      answer every request
//   mode=slow_start  init sleeps start_delay_ms first (Jetty prints "Started @" after it)
//   mode=hang        every request blocks forever (the JVM and its port stay up)
//   mode=init_fail   init throws: Jetty logs "Failed startup of context", still
//                    prints "Started @", and answers every request with 503
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

public final class ScoringServlet extends HttpServlet {
    private final long startTime = System.currentTimeMillis();
    private final AtomicLong lastTime = new AtomicLong();
    private final AtomicLong predictions = new AtomicLong();
    private String mode = "normal";

    @Override
    public void init() throws ServletException {
        Properties p = new Properties();
        try (InputStream in = getServletContext().getResourceAsStream("/WEB-INF/scorer.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new ServletException("reading scorer.properties", e);
        }
        mode = p.getProperty("mode", "normal");
        switch (mode) {
            case "slow_start":
                try {
                    Thread.sleep(Long.parseLong(p.getProperty("start_delay_ms", "5000")));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                break;
            case "init_fail":
                throw new ServletException("model failed to load: scorer.properties asks for init_fail");
            default:
        }
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        if (mode.equals("hang")) {
            // Blocks until the JVM dies; a stopped Jetty waits for it.
            while (true) {
                try {
                    Thread.sleep(60000);
                } catch (InterruptedException e) {
                    // keep hanging, as a stuck model would
                }
            }
        }
        String path = req.getRequestURI();
        resp.setContentType("application/json");
        switch (path) {
            case "/ping":
                resp.getWriter().print("{}");
                return;
            case "/predict":
            case "/predictbinary":
                predictions.incrementAndGet();
                lastTime.set(System.currentTimeMillis());
                resp.getWriter().print("{\"labelIndex\":0,\"label\":\"0\",\"classProbabilities\":[0.75,0.25]}");
                return;
            case "/stats":
                resp.getWriter().printf("{\"startTime\":%d,\"lastTime\":%d,\"predictions\":%d}",
                        startTime, lastTime.get(), predictions.get());
                return;
            case "/info":
                resp.getWriter().print("{\"mode\":\"" + mode + "\"}");
                return;
            default:
                resp.sendError(HttpServletResponse.SC_NOT_FOUND);
        }
    }
}
