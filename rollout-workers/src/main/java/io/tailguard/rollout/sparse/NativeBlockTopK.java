package io.tailguard.rollout.sparse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * The fused native Block-Top-k kernel (src/main/c/block_topk.c): for every sequence and KV head it
 * scores the landmarks, selects the kept pages and attends over them where the KV cache holds
 * them, with no copy of any page, on the calling thread and a small pool of helper threads.
 *
 * <p>The build compiles it with the system C compiler into the jar (native/linux-x86_64/); it is
 * loaded once per JVM on Linux x86-64 with AVX2 and FMA. Where it is missing (no compiler at build
 * time, another platform) or turned off with {@code -Dtailguard.sparse.kernel=torch}, the sparse
 * kernel computes the same attention with libtorch ops instead ({@link BlockTopKAttention}).
 */
final class NativeBlockTopK {
    static final String PROPERTY = "tailguard.sparse.kernel";
    static final String RESOURCE = "/native/linux-x86_64/libtailguard_sparse.so";

    private static final String UNAVAILABLE;

    static {
        String why;
        try {
            why = load();
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            why = "could not load " + RESOURCE + ": " + e.getMessage();
        }
        UNAVAILABLE = why;
    }

    private NativeBlockTopK() {
    }

    /** Loads the library; returns null, or why it is not available. */
    private static String load() throws IOException {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "built for Linux x86-64 only (this is " + os + " " + arch + ")";
        }
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (Files.isReadable(cpuinfo)) {
            String flags = Files.readString(cpuinfo).lines().filter(l -> l.startsWith("flags")).findFirst().orElse("") + " ";
            if (!flags.contains(" avx2 ") || !flags.contains(" fma ")) {
                return "this CPU lacks AVX2 or FMA";
            }
        }
        try (InputStream in = NativeBlockTopK.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return RESOURCE + " is not in the build (no C compiler when it was built?)";
            }
            Path tmp = Files.createTempFile("tailguard-sparse", ".so");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            System.load(tmp.toString());
        }
        return null;
    }

    /** Whether the native kernel is loaded (on this platform, in this build). */
    static boolean loaded() {
        return UNAVAILABLE == null;
    }

    /** Why it is not loaded, or null. */
    static String unavailableReason() {
        return UNAVAILABLE;
    }

    /**
     * The kernel the sparse path uses unless told otherwise: native where it is loaded, libtorch ops
     * where it is not or where {@code -Dtailguard.sparse.kernel=torch}. Any other value than
     * native or torch is an error naming the property.
     */
    static boolean preferred() {
        String v = System.getProperty(PROPERTY, "native").trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "native" -> loaded();
            case "torch" -> false;
            default -> throw new IllegalArgumentException("-D" + PROPERTY + ": expected native or torch, got '" + v + "'");
        };
    }

    private static final int THREADS = threadsFromEnvironment();

    /** Threads for one call (read once per JVM: it is asked for on every sparse layer). */
    static int threads() {
        return THREADS;
    }

    /** DJL's intra-op setting, else OMP_NUM_THREADS, else the processors. */
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

    /** Whether the native kernel can serve these tensors: float32 on the CPU, few enough (sequence, head) pairs. */
    static boolean serves(NDArray q, NDArray keys) {
        return !q.getDevice().isGpu() && !keys.getDevice().isGpu()
                && q.getDataType() == DataType.FLOAT32 && keys.getDataType() == DataType.FLOAT32
                && q.getShape().get(0) * q.getShape().get(1) < 65_536;
    }

    /** Direct view of a contiguous CPU tensor's memory (a contiguous copy, on its manager, if it is not contiguous). */
    static ByteBuffer view(NDArray a) {
        return a.toByteBuffer(true);
    }

    /**
     * Sparse attention of one layer. keys, values [B, kvh, cap, D]; marks [B, kvh, cap/16, D]; q and
     * out [B, kvh, r, D]; lengths[b] tokens of sequence b; keep[b] pages it keeps (≥ its page count:
     * all of them). Writes out.
     */
    static native void attend(ByteBuffer keys, ByteBuffer values, ByteBuffer marks, ByteBuffer q, ByteBuffer out,
                              int[] lengths, int[] keep, int batch, int kvh, int r, int d, int cap, int threads);
}
