package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

import java.util.List;

/**
 * Trajectories packed for one teacher-forced forward: rows are prompt + output[:-1], right-padded
 * to T; output token j of row i is predicted at column prompt_i − 1 + j. Tokens are numbered in row
 * order, which is the order of every per-token array built alongside.
 */
record PackedBatch(long[] ids, int rows, int columns, long[] pick, long[] targets, int[] promptLengths) {

    static PackedBatch of(List<GrpoLearner.Sample> batch) {
        int b = batch.size();
        int t = 0;
        int n = 0;
        for (GrpoLearner.Sample s : batch) {
            t = Math.max(t, s.prompt().length + s.output().length - 1);
            n += s.output().length;
        }
        long[] ids = new long[b * t];
        long[] pick = new long[n];       // flat (row * t + column) of every output token's prediction
        long[] targets = new long[n];
        int[] promptLengths = new int[b];
        int k = 0;
        for (int i = 0; i < b; i++) {
            GrpoLearner.Sample s = batch.get(i);
            int p = s.prompt().length;
            promptLengths[i] = p;
            for (int j = 0; j < p + s.output().length - 1; j++) {
                ids[i * t + j] = j < p ? s.prompt()[j] : s.output()[j - p];
            }
            for (int j = 0; j < s.output().length; j++) {
                pick[k] = (long) i * t + p - 1 + j;
                targets[k] = s.output()[j];
                k++;
            }
        }
        return new PackedBatch(ids, b, t, pick, targets, promptLengths);
    }

    int tokens() {
        return pick.length;
    }

    NDArray input(NDManager m) {
        return m.create(ids, new Shape(rows, columns));
    }

    /**
     * The rows [n, X] at the predicting positions, from [rows, columns, X]: hidden states, so that
     * only these rows go through the vocabulary projection.
     */
    NDArray rows(NDArray perPosition, NDManager m) {
        return perPosition.reshape((long) rows * columns, -1).get(new NDIndex("{}", m.create(pick)));
    }

    /** The log-prob of each sampled token, [n], from {@link #rows}. */
    NDArray sampled(NDArray rows, NDManager m) {
        return rows.gather(m.create(targets, new Shape(targets.length, 1)), 1).reshape(targets.length);
    }
}
