package io.tailguard.compression;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.Qwen3Model;

import java.util.List;

/** How far a compressed model is from the original: the KL every compression method reports. */
public final class ModelKl {
    private ModelKl() {}

    /**
     * Mean over every position of every held-out sequence of KL(original ‖ compressed) between the
     * two models' next-token distributions, in nats.
     */
    public static double perToken(Qwen3Model original, Qwen3Model compressed, List<int[]> heldOut) {
        if (heldOut.isEmpty()) {
            throw new IllegalArgumentException("no held-out sequences");
        }
        double sum = 0;
        long tokens = 0;
        for (int[] seq : heldOut) {
            long[] ids = new long[seq.length];
            for (int i = 0; i < seq.length; i++) {
                ids[i] = seq[i];
            }
            try (NDManager m = original.manager().newSubManager()) {
                NDArray lp = original.forward(m.create(ids, new Shape(1, seq.length))).logSoftmax(-1);
                NDArray lq;
                try (NDManager mq = compressed.manager().newSubManager()) {
                    lq = compressed.forward(mq.create(ids, new Shape(1, seq.length))).logSoftmax(-1);
                    lq.attach(m);
                }
                // Σ_v p (log p − log q) per position, summed over positions.
                sum += lp.exp().mul(lp.sub(lq)).sum().getFloat();
                tokens += seq.length;
            }
        }
        return sum / tokens;
    }
}
