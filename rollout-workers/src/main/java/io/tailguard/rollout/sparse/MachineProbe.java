package io.tailguard.rollout.sparse;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * Measures the two {@link CostModel.Machine} constants on DJL's PyTorch engine, the engine the actor
 * decodes with:
 * <ul>
 *   <li>sustained float32 FLOP/s: 1024×1024 by 1024×1024 matmuls, 2·1024³ FLOPs each;</li>
 *   <li>memory bandwidth: the faster of a full sum of a large float32 tensor (reads it once) and a
 *       matrix-vector product with a large weight matrix (the decode pattern: reads the weights
 *       once); 128 MiB on the CPU, 1 GiB on a GPU, well past the caches.</li>
 * </ul>
 * Each measurement runs groups of operations, growing a group until it takes ≥ 50 ms, and reports
 * the median group rate (sustained, not a lucky burst). Reading one scalar back ends each group, so
 * asynchronous GPU work is counted. The default run takes about 6 s of timed work.
 */
public final class MachineProbe {
    private static final String ENGINE = "PyTorch";
    private static final int MATMUL_N = 1024;

    private MachineProbe() {
    }

    /** Measures the CPU (about 6 s of timed work plus set-up). */
    public static CostModel.Machine measure() {
        return measure(Device.cpu(), Duration.ofSeconds(6));
    }

    /**
     * Measures a device within about {@code budget} of timed work (half for FLOP/s, a quarter for
     * each bandwidth test), plus the time to allocate the tensors.
     */
    public static CostModel.Machine measure(Device device, Duration budget) {
        double seconds = budget.toNanos() / 1e9;
        if (!(seconds > 0)) {
            throw new IllegalArgumentException("measurement budget must be positive, got " + budget);
        }
        try (NDManager manager = NDManager.newBaseManager(device, ENGINE)) {
            double flops = matmulFlops(manager, seconds / 2);
            long values = device.isGpu() ? 256L << 20 : 32L << 20;
            double sumBytes = sumBandwidth(manager, values, seconds / 4);
            double gemvBytes = gemvBandwidth(manager, values, seconds / 4);
            return new CostModel.Machine(flops, Math.max(sumBytes, gemvBytes));
        }
    }

    private static double matmulFlops(NDManager manager, double seconds) {
        try (NDManager m = manager.newSubManager()) {
            NDArray a = m.randomUniform(-1f, 1f, new Shape(MATMUL_N, MATMUL_N), DataType.FLOAT32);
            NDArray b = m.randomUniform(-1f, 1f, new Shape(MATMUL_N, MATMUL_N), DataType.FLOAT32);
            double flopsPerOp = 2.0 * MATMUL_N * MATMUL_N * MATMUL_N;
            return flopsPerOp * opsPerSecond(m, seconds, sub -> a.matMul(b));
        }
    }

    private static double sumBandwidth(NDManager manager, long values, double seconds) {
        try (NDManager m = manager.newSubManager()) {
            NDArray x = m.ones(new Shape(values), DataType.FLOAT32);
            return 4.0 * values * opsPerSecond(m, seconds, sub -> x.sum());
        }
    }

    private static double gemvBandwidth(NDManager manager, long values, double seconds) {
        try (NDManager m = manager.newSubManager()) {
            long cols = 4096;
            long rows = values / cols;
            NDArray w = m.ones(new Shape(cols, rows), DataType.FLOAT32);
            NDArray v = m.ones(new Shape(1, cols), DataType.FLOAT32);
            return 4.0 * values * opsPerSecond(m, seconds, sub -> v.matMul(w));
        }
    }

    /** Median rate of op over groups, each group ≥ 50 ms, within about {@code seconds} in all. */
    private static double opsPerSecond(NDManager manager, double seconds, Function<NDManager, NDArray> op) {
        // warm-up: first-call costs (allocation, kernel selection, thread pools)
        runGroup(manager, op, 2);
        int group = 1;
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        List<Double> rates = new ArrayList<>();
        while (true) {
            long t0 = System.nanoTime();
            runGroup(manager, op, group);
            double dt = (System.nanoTime() - t0) / 1e9;
            if (dt < 0.05 && rates.isEmpty()) {
                group = (int) Math.min(1 << 20, group * 2L);
                if (System.nanoTime() < deadline) {
                    continue;
                }
            }
            rates.add(group / dt);
            if (System.nanoTime() >= deadline && rates.size() >= 3) {
                break;
            }
            if (rates.size() >= 3 && System.nanoTime() + dt * 1e9 > deadline + 0.5e9) {
                break; // one more group would overrun the budget by too much
            }
        }
        Collections.sort(rates);
        return rates.get(rates.size() / 2);
    }

    private static void runGroup(NDManager manager, Function<NDManager, NDArray> op, int count) {
        try (NDManager sub = manager.newSubManager()) {
            NDArray last = null;
            for (int i = 0; i < count; i++) {
                NDArray out = op.apply(sub);
                out.attach(sub);
                if (last != null) {
                    last.close();
                }
                last = out;
            }
            // reading a value back waits for queued device work
            last.flatten().get(0).getFloat();
        }
    }
}
