// Churn makes garbage so that its collectors run, then keeps still so that
// jstat and the hsperf reader see the same counters: it allocates for as
// many milliseconds as its argument says, prints "ready" and sleeps.
public final class Churn {
    static volatile Object sink;

    public static void main(String[] args) throws Exception {
        long until = System.currentTimeMillis() + Long.parseLong(args[0]);
        byte[][] keep = new byte[256][];
        for (long i = 0; System.currentTimeMillis() < until; i++) {
            keep[(int) (i % keep.length)] = new byte[16 * 1024];
            sink = new byte[1024];
        }
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
