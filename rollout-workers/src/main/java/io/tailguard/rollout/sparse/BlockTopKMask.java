package io.tailguard.rollout.sparse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ForwardMask;

import java.util.Set;
import java.util.function.IntUnaryOperator;

import static io.tailguard.model.KvCache.PAGE;

/**
 * Block-Top-k as a mask on a teacher-forced forward: the pages that {@link BlockTopKAttention} keeps
 * when it decodes each position of a trajectory, for every sparse layer, KV head and position at
 * once, so that one training forward gives the log-probs the sparse actor assigned (docs/algorithms.md,
 * "Block-Top-k sparse decode attention" and "DistillSparse").
 *
 * <p>For query position i of a row whose prompt has P tokens: positions i &lt; P were prefilled,
 * densely; a later position was decoded with context length L = i + 1 and budget B = budgetAt(L).
 * It keeps what the kernel keeps: every page when L ≤ B, else the last page (the partial one), the
 * first page and the one before the last, plus the top B/16 − 3 of the remaining pages by
 * q̄ · landmark, with q̄ the mean of the KV head's group of queries at position i and a landmark
 * the mean of a full page's keys. Causality does the rest (a kept page never shows later keys).
 * Selection and attention run on the forward's own q and k, which equal the decode's up to float
 * rounding.
 */
public final class BlockTopKMask implements ForwardMask {
    /** Page bias unit, as in the kernel: forced pages rank first, missing pages last. */
    private static final float BIG = 1e30f;

    private final IntUnaryOperator budgetAt;
    private final Set<Integer> denseLayers;
    private final int[] promptLengths;
    private Plan plan;

    /**
     * @param budgetAt      context length -> KV budget in tokens, as the kernel's
     * @param denseLayers   layers that decode densely
     * @param promptLengths per row of the batch
     */
    public BlockTopKMask(IntUnaryOperator budgetAt, Set<Integer> denseLayers, int[] promptLengths) {
        this.budgetAt = budgetAt;
        this.denseLayers = Set.copyOf(denseLayers);
        this.promptLengths = promptLengths.clone();
    }

    /** The masks of {@code BlockTopKAttention.of(schedule)}: the schedule's budgets and dense layers. */
    public static ForwardMask.Factory factory(Schedule schedule) {
        return promptLengths -> new BlockTopKMask(schedule::budgetAt, schedule.denseLayers(), promptLengths);
    }

    /**
     * What depends only on lengths, the same for every layer: the page bias [B, 1, T, P] (host) and
     * the pages kept per row and position.
     */
    private record Plan(int t, boolean allDense, float[] bias, long[] keepMinusOne, int gather) {}

    private Plan plan(int b, int t) {
        if (plan != null && plan.t() == t) {
            return plan;
        }
        if (b != promptLengths.length) {
            throw new IllegalArgumentException("mask built for " + promptLengths.length + " rows, forward has " + b);
        }
        int maxPages = (t + PAGE - 1) / PAGE;
        float[] bias = new float[b * t * maxPages];
        long[] keepMinusOne = new long[b * t];
        boolean allDense = true;
        int gather = 1;
        for (int row = 0; row < b; row++) {
            for (int i = 0; i < t; i++) {
                int len = i + 1;
                int pages = (len + PAGE - 1) / PAGE;
                int keep = i < promptLengths[row] ? pages : BlockTopKAttention.keptPages(len, budgetAt.applyAsInt(len));
                boolean dense = keep == pages;
                allDense &= dense;
                gather = Math.max(gather, keep);
                keepMinusOne[row * t + i] = keep - 1;
                int base = (row * t + i) * maxPages;
                for (int p = 0; p < maxPages; p++) {
                    float v;
                    if (p >= pages) {
                        v = -BIG;                               // not a page yet at this position
                    } else if (p == pages - 1) {
                        v = 3 * BIG;                            // the last (partial) page
                    } else if (dense || p == 0 || p == pages - 2) {
                        v = 2 * BIG;                            // sink, local window, or dense
                    } else {
                        v = 0;                                  // competes on its landmark score
                    }
                    bias[base + p] = v;
                }
            }
        }
        plan = new Plan(t, allDense, bias, keepMinusOne, gather);
        return plan;
    }

    @Override
    public NDArray visiblePages(int layer, NDArray q, NDArray k) {
        if (denseLayers.contains(layer)) {
            return null;
        }
        Shape qs = q.getShape();                                     // [B, kvh, r, T, D]
        int b = (int) qs.get(0);
        long kvh = qs.get(1);
        int t = (int) qs.get(3);
        long d = qs.get(4);
        Plan p = plan(b, t);
        if (p.allDense()) {
            return null;
        }
        int pages = (t + PAGE - 1) / PAGE;
        NDManager m = q.getManager();
        // Landmarks: the mean of each page's 16 keys; the last page may be partial (padded with
        // zeros), which is harmless: a partial page is always the forced last page, never a candidate.
        NDArray keys = k;
        if (pages * PAGE > t) {
            NDList parts = new NDList(k, m.zeros(new Shape(b, kvh, (long) pages * PAGE - t, d), k.getDataType()));
            keys = NDArrays.concat(parts, 2);
        }
        NDArray marks = keys.reshape(b, kvh, pages, PAGE, d).mean(new int[] {3});        // [B, kvh, P, D]
        NDArray qMean = q.mean(new int[] {2});                                          // [B, kvh, T, D]
        NDArray scores = qMean.matMul(marks.transpose(0, 1, 3, 2))                      // [B, kvh, T, P]
                .add(m.create(p.bias(), new Shape(b, 1, t, pages)));
        // Kept: the keep best of each row's ranking, i.e. every page scoring at least the keep-th best.
        NDArray best = scores.topK(Math.min(p.gather(), pages), -1, true, true).get(0); // [B, kvh, T, G]
        NDArray rank = m.create(p.keepMinusOne(), new Shape(b, 1, t, 1)).broadcast(b, kvh, t, 1);
        NDArray threshold = best.gather(rank, 3);                                       // [B, kvh, T, 1]
        return scores.gte(threshold);
    }
}
