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
     * Mean over every predicted token of every held-out sequence (positions 0 .. T−2, each
     * predicting the sequence's next token) of KL(original ‖ compressed) between the two models'
     * next-token distributions, in nats. The position after the last token predicts nothing the
     * sequence holds (after a final eos, a distribution no model was trained on) and is left out.
     */
    public static double perToken(Qwen3Model original, Qwen3Model compressed, List<int[]> heldOut) {
        if (heldOut.isEmpty()) {
            throw new IllegalArgumentException("no held-out sequences");
        }
        double sum = 0;
        long tokens = 0;
        for (int[] seq : heldOut) {
            if (seq.length < 2) {
                throw new IllegalArgumentException("a held-out sequence of " + seq.length + " tokens predicts no token");
            }
            int n = seq.length - 1;
            long[] ids = new long[n];
            for (int i = 0; i < n; i++) {
                ids[i] = seq[i];
            }
            try (NDManager m = original.manager().newSubManager()) {
                NDArray lp = original.forward(m.create(ids, new Shape(1, n))).logSoftmax(-1);
                NDArray lq;
                try (NDManager mq = compressed.manager().newSubManager()) {
                    lq = compressed.forward(mq.create(ids, new Shape(1, n))).logSoftmax(-1);
                    lq.attach(m);
                }
                // Σ_v p (log p − log q) per position, summed over positions.
                sum += lp.exp().mul(lp.sub(lq)).sum().getFloat();
                tokens += n;
            }
        }
        return sum / tokens;
    }
}
