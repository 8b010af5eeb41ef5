// SPDX-License-Identifier: MIT
// The Java side of tests/clients-jvm.sh (make check-clients), compiled there
// with javac.  Busy threads spin and allocate (so that the collector runs
// and stops them at safepoints) while a pool of threads launches processes
// with ProcessBuilder; run with -Djdk.lang.Process.launchMechanism=FORK,
// each launch is a fork() in libjava.  Every exit status and every output
// is checked.  A phase before the launches takes implicit null checks: a
// getfield on null in interpreted code is a SIGSEGV that the JVM's handler
// turns into a NullPointerException, so its time is the cost of the JVM's
// signal handling (behind libcfork's trampoline under the shim).
//
// Options: --launches N (200), --pool N (4), --busy N (2), --npe N
// (200000) null checks, --gate FILE: once the launches are done, wait
// (at most 300 s) until FILE exists, so that the script can dump the
// threads (jcmd, SIGQUIT) of a JVM that has forked and is still busy.
// Prints "forking pid=PID" when the launches start and one RESULT line of
// key=value pairs at the end; exits 0 when every launch was as expected.
import java.io.InputStream;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

public class ForkClient {
    static final class Node {
        Node next;
        long value;
    }

    static volatile boolean stop;
    static volatile Object sink;

    // Kept out of the JIT (-XX:CompileCommand=exclude in the script): the
    // interpreter's getfield has no explicit null test and relies on the
    // SIGSEGV, whereas compiled code that traps often is recompiled with
    // explicit tests and would stop taking signals.
    static long npeLoop(long n) {
        Node p = null;
        long caught = 0;
        for (long i = 0; i < n; i++) {
            try {
                sink = p.next;
            } catch (NullPointerException e) {
                caught++;
            }
        }
        return caught;
    }

    // CPU work and garbage: a ring of arrays keeps some alive long enough
    // to be promoted, so that both young and old collections happen.
    static void busy(AtomicLong work) {
        Object[] ring = new Object[4096];
        long x = 88172645463325252L;
        int slot = 0;
        while (!stop) {
            for (int i = 0; i < 20000; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
            }
            int size = 64 + (int) ((x >>> 1) % 16384);
            byte[] b = new byte[size];
            b[size - 1] = (byte) x;
            ring[slot] = b;
            slot = (slot + 1) % ring.length;
            work.incrementAndGet();
        }
        sink = ring;
    }

    static String readAll(InputStream in) throws Exception {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }

    // One launch; null when the process did as expected, else what it did.
    static String launch(int i) throws Exception {
        ProcessBuilder pb;
        String want;
        int wantStatus;
        if (i % 2 == 0) {
            pb = new ProcessBuilder("/bin/echo", "echo-" + i);
            want = "echo-" + i + "\n";
            wantStatus = 0;
        } else {
            pb = new ProcessBuilder("/bin/sh", "-c", "echo sh-$0; exit $1",
                    String.valueOf(i), String.valueOf(i % 7));
            want = "sh-" + i + "\n";
            wantStatus = i % 7;
        }
        // Anything a child writes on stderr (a warning of a preloaded
        // library, say) makes its output differ.
        pb.redirectErrorStream(true);
        Process p = pb.start();
        p.getOutputStream().close();
        String out = readAll(p.getInputStream());
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "launch " + i + ": did not exit within 120 s";
        }
        int status = p.exitValue();
        if (status != wantStatus || !out.equals(want))
            return "launch " + i + ": status " + status + " (want "
                    + wantStatus + "), output \"" + out.replace("\n", "\\n")
                    + "\" (want \"" + want.replace("\n", "\\n") + "\")";
        return null;
    }

    public static void main(String[] args) throws Exception {
        int launches = 200, pool = 4, busyThreads = 2;
        long npes = 200000;
        Path gate = null;
        for (int a = 0; a < args.length; a++) {
            switch (args[a]) {
            case "--launches": launches = Integer.parseInt(args[++a]); break;
            case "--pool": pool = Integer.parseInt(args[++a]); break;
            case "--busy": busyThreads = Integer.parseInt(args[++a]); break;
            case "--npe": npes = Long.parseLong(args[++a]); break;
            case "--gate": gate = Paths.get(args[++a]); break;
            default:
                System.err.println("ForkClient: unknown argument " + args[a]);
                System.exit(2);
            }
        }

        AtomicLong work = new AtomicLong();
        List<Thread> busy = new ArrayList<>();
        for (int t = 0; t < busyThreads; t++) {
            Thread th = new Thread(() -> busy(work), "busy-" + t);
            th.start();
            busy.add(th);
        }

        long t0 = System.nanoTime();
        long caught = npeLoop(npes);
        long npeNs = System.nanoTime() - t0;

        System.out.println("forking pid=" + ProcessHandle.current().pid());
        System.out.flush();
        ExecutorService executor = Executors.newFixedThreadPool(pool);
        List<Future<String>> results = new ArrayList<>();
        long t1 = System.nanoTime();
        for (int i = 0; i < launches; i++) {
            final int n = i;
            results.add(executor.submit(() -> launch(n)));
        }
        int ok = 0, failed = 0;
        for (Future<String> f : results) {
            String why;
            try {
                why = f.get();
            } catch (Exception e) {
                why = e.toString();
            }
            if (why == null) {
                ok++;
            } else {
                failed++;
                if (failed <= 10)
                    System.out.println("FAIL " + why);
            }
        }
        long launchNs = System.nanoTime() - t1;
        executor.shutdown();

        if (gate != null) {
            System.out.println("waiting for " + gate);
            System.out.flush();
            long end = System.nanoTime() + 300_000_000_000L;
            while (!Files.exists(gate) && System.nanoTime() < end)
                Thread.sleep(50);
        }

        stop = true;
        for (Thread th : busy)
            th.join();
        long gcs = 0;
        for (GarbageCollectorMXBean gc :
                ManagementFactory.getGarbageCollectorMXBeans())
            gcs += Math.max(0, gc.getCollectionCount());
        System.out.printf("RESULT launches=%d ok=%d failed=%d launch_ms=%d"
                + " npe=%d caught=%d npe_ms=%d busy_work=%d gcs=%d threads=%d%n",
                launches, ok, failed, launchNs / 1000000, npes, caught,
                npeNs / 1000000, work.get(), gcs, Thread.activeCount());
        System.exit(ok == launches && caught == npes ? 0 : 1);
    }
}
