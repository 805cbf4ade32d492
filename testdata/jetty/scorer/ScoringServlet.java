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
//   mode=fill_heap   answer every request, while a thread started by the first
//                    one holds fill_percent (default 94) of the heap and keeps
//                    allocating: the collectors run back to back, as before an
//                    OutOfMemoryError (run it with a small -Xmx, for example
//                    JDK_JAVA_OPTIONS=-Xmx64m)
//
// /stats answers in the shape of Steam's StatsServlet (counts as Gson writes
// them, doubles), counting what /predict answered.
import java.io.IOException;
import java.io.InputStream;
import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.Properties;
import java.util.TimeZone;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

public final class ScoringServlet extends HttpServlet {
    private static final int WARM_UP_COUNT = 5;
    // Written, never read: the JIT must not elide the allocations.
    private static volatile Object garbage;
    private static final int CHUNK = 64 * 1024;
    // A held chunk fills a whole 1 MiB G1 region (-Xmx64m's region size) less
    // the array's header: G1 puts it straight into the old generation, where
    // no collection moves or shrinks it.
    private static final int HELD_CHUNK = (1 << 20) - 16;

    // Times is Steam's ServletUtil.Times: a count and sums of milliseconds.
    private static final class Times {
        private long count;
        private double totalTimeMs, totalTimeSquaredMs, warmupTimeMs, warmupTimeSquaredMs, lastMs;

        synchronized void add(double ms) {
            count++;
            totalTimeMs += ms;
            totalTimeSquaredMs += ms * ms;
            if (count <= WARM_UP_COUNT) {
                warmupTimeMs += ms;
                warmupTimeSquaredMs += ms * ms;
            }
            lastMs = ms;
        }

        synchronized String json() {
            double avg = count > 0 ? totalTimeMs / count : 0.0;
            double afterWarmup = count > WARM_UP_COUNT ? (totalTimeMs - warmupTimeMs) / (count - WARM_UP_COUNT) : 0.0;
            return "{\"count\":" + (double) count + ",\"totalTimeMs\":" + totalTimeMs
                    + ",\"totalTimeSquaredMs\":" + totalTimeSquaredMs + ",\"warmupTimeMs\":" + warmupTimeMs
                    + ",\"warmupTimeSquaredMs\":" + warmupTimeSquaredMs + ",\"lastMs\":" + lastMs
                    + ",\"averageTime\":" + avg + ",\"averageAfterWarmupTime\":" + afterWarmup + "}";
        }
    }

    private final long startTime = System.currentTimeMillis();
    private final AtomicLong lastTime = new AtomicLong();
    private final Times predictionTimes = new Times(), getTimes = new Times(), postTimes = new Times(),
            pythonGetTimes = new Times(), pythonPostTimes = new Times();
    private String mode = "normal";
    private int fillPercent;
    private final AtomicBoolean filling = new AtomicBoolean();

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
            case "fill_heap":
                fillPercent = Integer.parseInt(p.getProperty("fill_percent", "94"));
                break;
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
        // Filling starts at the first request: Jetty has started by then.
        if (mode.equals("fill_heap") && filling.compareAndSet(false, true)) {
            held = new byte[(int) (Runtime.getRuntime().maxMemory() / HELD_CHUNK) + 1][];
            Thread filler = new Thread(() -> {
                while (true) {
                    try {
                        fillHeap(fillPercent);
                    } catch (Throwable e) {
                        // struck in fillHeap's handler: fill on
                    }
                }
            }, "fill-heap");
            filler.setDaemon(true);
            filler.start();
        }
        String path = req.getRequestURI();
        resp.setContentType("application/json");
        switch (path) {
            case "/ping":
                resp.getWriter().print("{}");
                return;
            case "/predict":
            case "/predictbinary":
                long begin = System.nanoTime();
                String answer = "{\"labelIndex\":0,\"label\":\"0\",\"classProbabilities\":[0.75,0.25]}";
                double ms = (System.nanoTime() - begin) / 1e6;
                lastTime.set(System.currentTimeMillis());
                predictionTimes.add(ms);
                resp.getWriter().print(answer);
                (req.getMethod().equals("POST") ? postTimes : getTimes).add((System.nanoTime() - begin) / 1e6);
                return;
            case "/stats":
                resp.getWriter().print(stats());
                return;
            case "/info":
                resp.getWriter().print("{\"mode\":\"" + mode + "\"}");
                return;
            default:
                resp.sendError(HttpServletResponse.SC_NOT_FOUND);
        }
    }

    private String stats() {
        long now = System.currentTimeMillis();
        long last = lastTime.get();
        SimpleDateFormat utc = new SimpleDateFormat("yyyy-MM-dd HH:mm:ss z");
        utc.setTimeZone(TimeZone.getTimeZone("UTC"));
        return "{\"startTime\":" + startTime + ",\"lastTime\":" + last
                + ",\"lastTimeUTC\":\"" + (last > 0 ? utc.format(new Date(last)) : "") + "\""
                + ",\"startTimeUTC\":\"" + utc.format(new Date(startTime)) + "\""
                + ",\"upTimeMs\":" + (now - startTime) + ",\"lastTimeAgoMs\":" + (now - last)
                + ",\"warmUpCount\":" + WARM_UP_COUNT
                + ",\"prediction\":" + predictionTimes.json() + ",\"get\":" + getTimes.json()
                + ",\"post\":" + postTimes.json() + ",\"pythonget\":" + pythonGetTimes.json()
                + ",\"pythonpost\":" + pythonPostTimes.json() + "}";
    }

    // fillHeap holds percent of the heap and allocates on; an
    // OutOfMemoryError lets a little go (allocating nothing), so that the JVM
    // lives on collecting. The chunks are static: an OutOfMemoryError can
    // strike inside the handler too (deoptimising allocates), and the caller
    // then calls again without losing them.
    private static byte[][] held;
    private static int heldCount;

    private static void fillHeap(int percent) {
        Runtime rt = Runtime.getRuntime();
        long target = rt.maxMemory() / 100 * percent;
        while (true) {
            try {
                if (heldCount < held.length && rt.totalMemory() - rt.freeMemory() < target) {
                    held[heldCount] = new byte[HELD_CHUNK];
                    heldCount++;
                }
                garbage = new byte[CHUNK];
            } catch (Throwable e) {
                for (int drop = Math.max(1, heldCount / 100); drop > 0 && heldCount > 0; drop--) {
                    held[--heldCount] = null;
                }
            }
        }
    }
}
