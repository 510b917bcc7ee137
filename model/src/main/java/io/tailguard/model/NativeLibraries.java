package io.tailguard.model;

import ai.djl.ndarray.NDArray;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.function.IntSupplier;

/**
 * The project's own native kernels (C with AVX2/FMA over JNI, compiled by the Maven build with the
 * system C compiler into a jar's {@code native/linux-x86_64/}): loading, the thread count they use,
 * and direct views of tensor memory. Each kernel has a libtorch twin that runs where its library is
 * missing (no compiler at build time, another platform, a GPU) or turned off by its property.
 */
public final class NativeLibraries {
    private static final int THREADS = threadsFromEnvironment();

    private NativeLibraries() {
    }

    /** One native library: whether it loaded, and the property that chooses it or its libtorch twin. */
    public static final class Library {
        private final String property;
        private final String unavailable;

        private Library(String property, String unavailable) {
            this.property = property;
            this.unavailable = unavailable;
        }

        /** Whether the library is loaded (on this platform, in this build). */
        public boolean loaded() {
            return unavailable == null;
        }

        /** Why it is not loaded, or null. */
        public String unavailableReason() {
            return unavailable;
        }

        /**
         * Whether its kernel should run: the property ({@code native}, the default, or {@code torch})
         * says native and the library loaded. Any other value is an error naming the property.
         */
        public boolean preferred() {
            String v = System.getProperty(property, "native").trim().toLowerCase(Locale.ROOT);
            return switch (v) {
                case "native" -> loaded();
                case "torch" -> false;
                default -> throw new IllegalArgumentException("-D" + property + ": expected native or torch, got '" + v + "'");
            };
        }
    }

    /**
     * Loads a library from a jar resource, for {@code owner}'s native methods, chosen by the system
     * property {@code property}. A library that cannot load (another platform, a CPU without AVX2
     * and FMA, not in the build) says why. C needs the page size as a compile-time constant, so the
     * kernels have their own copy (src/main/c/tg_page.h); {@code pageSize}, the library's native
     * method that returns it, must give {@link KvCache#PAGE}, or the library counts as not loaded and
     * its libtorch twin runs (the tests that expect the native kernels then fail, naming both).
     */
    public static Library load(Class<?> owner, String resource, String property, IntSupplier pageSize) {
        String reason = loadReason(owner, resource);
        if (reason == null) {
            reason = pageReason(resource, pageSize);
        }
        return new Library(property, reason);
    }

    /** Null when the library's page is KvCache.PAGE, else why it cannot serve. */
    static String pageReason(String resource, IntSupplier pageSize) {
        try {
            int page = pageSize.getAsInt();
            return page == KvCache.PAGE ? null
                    : resource + " was built with pages of " + page + " tokens, but KvCache.PAGE is " + KvCache.PAGE
                    + " (rebuild it with tg_page.h's PAGE = KvCache.PAGE)";
        } catch (UnsatisfiedLinkError e) {
            return resource + " has no page size to check (" + e.getMessage() + "); rebuild it";
        }
    }

    private static String loadReason(Class<?> owner, String resource) {
        try {
            String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
            String arch = System.getProperty("os.arch", "");
            if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
                return "built for Linux x86-64 only (this is " + os + " " + arch + ")";
            }
            Path cpuinfo = Path.of("/proc/cpuinfo");
            if (Files.isReadable(cpuinfo)) {
                String flags = Files.readString(cpuinfo).lines().filter(l -> l.startsWith("flags")).findFirst().orElse("") + " ";
                if (!flags.contains(" avx2 ") || !flags.contains(" fma ") || !flags.contains(" f16c ")) {
                    return "this CPU lacks AVX2, FMA or F16C";
                }
            }
            try (InputStream in = owner.getResourceAsStream(resource)) {
                if (in == null) {
                    return resource + " is not in the build (no C compiler when it was built?)";
                }
                Path tmp = Files.createTempFile("tailguard-native", ".so");
                try {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                    System.load(tmp.toString());
                } finally {
                    // the loaded library stays mapped: its file can go at once, so a JVM that is killed
                    // (where deleteOnExit never runs) leaves nothing behind in the temporary directory
                    Files.deleteIfExists(tmp);
                }
            }
            return null;
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "could not load " + resource + ": " + e.getMessage();
        }
    }

    /** This thread's cap on a native call's threads (0: none), set by {@link #limitThreads}. */
    private static final ThreadLocal<int[]> CAP = ThreadLocal.withInitial(() -> new int[1]);

    /**
     * Threads for one native call: DJL's intra-op setting, else OMP_NUM_THREADS, else the processors
     * (read once per JVM), at most this thread's cap ({@link #limitThreads}) when one is set.
     */
    public static int threads() {
        return capped(CAP.get()[0]);
    }

    /** The threads a cap allows (0: every thread the process may use). */
    private static int capped(int cap) {
        return cap > 0 ? Math.min(cap, THREADS) : THREADS;
    }

    /** A cap on this thread's native calls, lifted (to what it was) by {@link #close}. */
    public static final class ThreadCap implements AutoCloseable {
        private final int before;

        private ThreadCap(int before) {
            this.before = before;
        }

        /**
         * The cap before this one again, libtorch's threads with it: the outer cap's, or every
         * thread the process may use where there was none. (Not the count libtorch had: a pool
         * thread that started libtorch while another thread's cap held takes that cap as its own
         * default, since libtorch keeps the last count set for threads that start later.)
         */
        @Override
        public void close() {
            CAP.get()[0] = before;
            setLibtorchThreads(before);
        }
    }

    /**
     * Caps the threads of the native calls this thread makes until the returned scope closes (0: no
     * cap): the project's kernels ({@link #threads}) and libtorch's operations (its intra-op threads,
     * which OpenMP and MKL keep per calling thread). For actors that share one machine's cores: a
     * rollout worker and a learner in one process that each ask for every core oversubscribe them,
     * and a small decode step gains less from a second thread than the wake-ups cost it.
     */
    public static ThreadCap limitThreads(int threads) {
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be >= 0 (0: no cap), got " + threads);
        }
        int[] cap = CAP.get();
        ai.djl.engine.Engine.getEngine("PyTorch"); // libtorch loaded (at once where it is already)
        setLibtorchThreads(threads);
        ThreadCap scope = new ThreadCap(cap[0]);
        cap[0] = threads;
        return scope;
    }

    /** libtorch's intra-op threads on this thread under a cap. */
    private static void setLibtorchThreads(int cap) {
        ai.djl.pytorch.jni.JniUtils.setNumThreads(capped(cap));
    }

    private static int threadsFromEnvironment() {
        Integer djl = Integer.getInteger("ai.djl.pytorch.num_threads");
        if (djl != null && djl > 0) {
            return djl;
        }
        try {
            int omp = Integer.parseInt(System.getenv().getOrDefault("OMP_NUM_THREADS", "").trim());
            if (omp > 0) {
                return omp;
            }
        } catch (NumberFormatException ignored) {
            // unset or not a number: the processors
        }
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * Direct view of a contiguous CPU tensor's memory: the kernel reads and writes the tensor itself.
     * (A tensor that is not contiguous comes back as a contiguous copy, which is only good to read.)
     */
    public static ByteBuffer view(NDArray a) {
        return a.toByteBuffer(true);
    }
}
