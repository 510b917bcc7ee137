package io.tailguard.rollout.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Token choice where the logits are, for a model on a GPU: the log-softmax, the greedy argmax or a
 * draw, the chosen token's log-prob and the top alternatives when asked, as tensor ops on the logits'
 * device, so that a step sends B ids and B log-probs (and k alternatives per row) to the host instead
 * of B × V logits. On the host ({@link TokenSampler}) a step copies the logits and takes two passes of
 * exp over each row on one core, which at Qwen3's vocabulary of 151,936 costs more than a GPU's
 * decode step.
 *
 * <p>The rule is {@link TokenSampler}'s: greedy takes the first maximum; a draw takes the first token
 * whose cumulative probability exceeds u · total, u the sequence's next uniform number (one per draw,
 * from the same stream as on the host). The arithmetic is float32, not double: a log-prob differs
 * from the host's by about 1e-6, and a drawn token can differ only where u falls within float32
 * rounding of the cumulative sum (about 1e-6 of the mass) of a boundary.
 */
final class DeviceSampler {
    private DeviceSampler() {
    }

    /** One step's choice: ids [B] and their log-probs; top [B][k] alternatives and capture [B][k], or null. */
    record Choice(long[] ids, float[] logprobs, int[][] topIds, float[][] topLogprobs, int[][] capIds,
                  float[][] capLogprobs) {
    }

    /**
     * Whether a request's choices can be made on the device: greedy or plain temperature sampling
     * (no top-k or top-p truncation), and a capture of the top k (k &lt; V) or none. Others stay on
     * the host.
     */
    static boolean supports(GenerationRequest req, int vocab) {
        SamplingParams p = req.sampling();
        int cap = req.captureTopK();
        return p.topK() == 0 && p.topP() >= 1 && (cap == GenerationRequest.NO_CAPTURE || (cap > 0 && cap < vocab));
    }

    /**
     * @param logits      [B, V] on the device; temporaries go to its manager
     * @param u           per row, the uniform number of a draw (ignored when greedy)
     * @param topLogprobs alternatives per position at the sampling temperature (0: none)
     * @param capture     the top-k of the temperature-1 distribution to keep ({@link GenerationRequest#NO_CAPTURE}: none)
     */
    static Choice choose(NDArray logits, SamplingParams p, double[] u, int topLogprobs, int capture) {
        int b = (int) logits.getShape().get(0);
        int v = (int) logits.getShape().get(1);
        NDArray lp1 = logits.logSoftmax(-1);
        NDArray lp = p.isGreedy() || p.temperature() == 1.0 ? lp1 : logits.div((float) p.temperature()).logSoftmax(-1);
        NDArray ids;
        if (p.isGreedy()) {
            ids = lp.argMax(-1);
        } else {
            float[] uf = new float[b];
            for (int i = 0; i < b; i++) {
                uf[i] = (float) u[i];
            }
            NDArray cdf = lp.exp().cumSum(-1);                                           // [B, V]
            NDArray target = logits.getManager().create(uf, new Shape(b, 1)).mul(cdf.get(new NDIndex(":, -1:")));
            // the first token whose cumulative mass exceeds the target = how many do not
            ids = cdf.lte(target).toType(DataType.INT64, false).sum(new int[] {-1}).minimum(v - 1);
        }
        ids = ids.toType(DataType.INT64, false);
        float[] chosen = lp.gather(ids.reshape(b, 1), 1).toFloatArray();
        long[] idArr = ids.toLongArray();
        int[][] topI = null;
        float[][] topV = null;
        if (topLogprobs > 0) {
            NDList t = lp.topK(Math.min(topLogprobs, v), -1, true, true);
            topI = rows(t.get(1), b);
            topV = values(t.get(0), b);
        }
        int[][] capI = null;
        float[][] capV = null;
        if (capture > 0) {
            NDList t = lp1.topK(Math.min(capture, v), -1, true, true);
            capI = rows(t.get(1), b);
            capV = values(t.get(0), b);
        }
        return new Choice(idArr, chosen, topI, topV, capI, capV);
    }

    private static int[][] rows(NDArray idx, int b) {
        long[] flat = idx.toType(DataType.INT64, false).toLongArray();
        int k = flat.length / b;
        int[][] out = new int[b][k];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < k; j++) {
                out[i][j] = (int) flat[i * k + j];
            }
        }
        return out;
    }

    private static float[][] values(NDArray vals, int b) {
        float[] flat = vals.toFloatArray();
        int k = flat.length / b;
        float[][] out = new float[b][k];
        for (int i = 0; i < b; i++) {
            System.arraycopy(flat, i * k, out[i], 0, k);
        }
        return out;
    }
}
