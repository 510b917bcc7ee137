package io.tailguard.rollout.sparse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.DecodeStep;
import io.tailguard.model.KvCache;
import io.tailguard.model.NativeLibraries;

import java.util.Set;
import java.util.function.IntUnaryOperator;

import static io.tailguard.model.KvCache.PAGE;

/**
 * Block-Top-k sparse decode attention (docs/algorithms.md, "Block-Top-k sparse decode attention").
 *
 * <p>For a sequence of context length L under a KV budget B (tokens, a multiple of the page of 16,
 * {@code KvCache.PAGE}; {@link Budgets}), k = B/16 − 3
 * pages are chosen per layer and KV head by the score q̄ · landmark, where q̄ is the mean of the
 * group's r queries and a page's landmark the mean of its keys; the first page (attention sink) and
 * the 2 most recent pages (the partial one included) are always kept. Attention then runs exactly
 * over the kept tokens. Only the landmark scores grow with L: the kept pages are gathered by index
 * (B tokens per sequence and head), never the whole cache, and no full attention is computed.
 *
 * <p>A sequence whose context fits its budget (L ≤ B) keeps every page, i.e. attends densely; when
 * every sequence of the batch does, and in the dense layers (the schedule's, default 0 and 1), the kernel defers to
 * exact dense attention. The budget of each sequence comes from its current length through
 * {@code budgetAt} (a schedule), at every step.
 *
 * <p>Two implementations compute the same attention. The native one ({@link NativeBlockTopK}, the
 * default where it is loaded) scores, selects and attends in one pass per sequence and head over
 * the pages where the cache holds them, on all intra-op threads; it also serves the dense layers
 * and all-dense steps, keeping every page, and {@link #dense()} is it under the dense schedule.
 * The libtorch one gathers the kept pages into fresh tensors (one copy of B tokens per sequence
 * and head) and attends with tensor ops; it serves GPUs, other platforms, and
 * {@code -Dtailguard.sparse.kernel=torch}.
 *
 * <p>Not thread-safe: per-step tables are shared by the layers of one step.
 */
public final class BlockTopKAttention implements AttentionKernel {
    /** Page bias unit: forced pages get 2 or 3 BIG, missing ones −BIG; finite, so no NaN arises. */
    private static final float BIG = 1e30f;
    /** Attention mask value for tokens outside the kept set (exp underflows to exactly 0). */
    private static final float NEG = -1e30f;

    private final IntUnaryOperator budgetAt;
    private final Set<Integer> denseLayers;
    private final boolean useNative;

    private DecodeStep planned;
    private Plan plan;

    /**
     * @param budgetAt    context length -> KV budget in tokens ({@link Budgets#RULE};
     *                    Integer.MAX_VALUE for dense)
     * @param denseLayers layers that always decode densely
     */
    public BlockTopKAttention(IntUnaryOperator budgetAt, Set<Integer> denseLayers) {
        this(budgetAt, denseLayers, NativeBlockTopK.LIBRARY.preferred());
    }

    /** As above, with the implementation chosen: native (if loaded; else libtorch) or libtorch. */
    BlockTopKAttention(IntUnaryOperator budgetAt, Set<Integer> denseLayers, boolean useNative) {
        this.budgetAt = budgetAt;
        this.denseLayers = Set.copyOf(denseLayers);
        this.useNative = useNative && NativeBlockTopK.LIBRARY.loaded();
    }

    /** Whether sparse layers run the native kernel (on CPU tensors). */
    public boolean usesNativeKernel() {
        return useNative;
    }

    /** Budgets and dense layers from a schedule. */
    public static BlockTopKAttention of(Schedule schedule) {
        return new BlockTopKAttention(schedule::budgetAt, schedule.denseLayers());
    }

    /** One budget at every length, the default dense layers. */
    public static BlockTopKAttention fixedBudget(int budget) {
        checkBudget(budget);
        return new BlockTopKAttention(len -> budget, Schedule.DEFAULT_DENSE_LAYERS);
    }

    static void checkBudget(int budget) {
        if (!Budgets.valid(budget)) {
            throw new IllegalArgumentException("KV budget must be " + Budgets.RULE + ", got " + budget);
        }
    }

    /**
     * Pages kept by a sequence of {@code length} tokens (this step's included) under {@code budget}:
     * all ceil(length/16) of them when the context fits the budget, else budget/16 (at most all).
     * {@link BlockTopKMask} applies the same rule to a teacher-forced forward.
     */
    static int keptPages(int length, int budget) {
        int pages = (length + PAGE - 1) / PAGE;
        if (length <= budget) {
            return pages;
        }
        checkBudget(budget);
        return Math.min(pages, budget / PAGE);
    }

    /**
     * KV positions a sequence of {@code length} tokens (this step's included) reads in {@code layer}
     * at one decode step: all of them in a dense layer or when the context fits its budget, else
     * the kept pages' 16 positions each, i.e. the budget (the partial last page counts whole). This
     * is the cost model's count of attended keys ({@link CostModel}: L dense, B sparse), taken from
     * the kernel's own page rule ({@link #keptPages}), so work can be compared with it exactly.
     */
    public long positionsRead(int layer, int length) {
        if (denseLayers.contains(layer)) {
            return length;
        }
        int keep = keptPages(length, budgetAt.applyAsInt(length));
        return keep == (length + PAGE - 1) / PAGE ? length : (long) keep * PAGE;
    }

    /** What one step attends to, the same for every sparse layer of that step. */
    private record Plan(boolean allDense, int pages, int gather, int[] lengths, int[] keep, int[] all,
                        NDArray bias, NDArray pageBase, NDArray mask) {}

    /**
     * Dense decode attention on the kernel the sparse path uses: the native kernel keeping every page
     * where it is loaded (exact attention, no selection), else libtorch's {@link AttentionKernel#DENSE}.
     * Rollouts under the dense schedule and the dense side of {@code bench rollout} decode with it, so
     * that sparse and dense differ only in the pages they read.
     */
    public static AttentionKernel dense() {
        return NativeBlockTopK.LIBRARY.preferred() ? of(Schedule.dense()) : AttentionKernel.DENSE;
    }

    /** The decode kernel of a schedule: {@link #dense()} for the dense schedule, else Block-Top-k under it. */
    public static AttentionKernel forSchedule(Schedule schedule) {
        return schedule.isDense() ? dense() : of(schedule);
    }

    @Override
    public NDArray decode(int layer, NDArray q, KvCache cache, DecodeStep step) {
        boolean nativeLayer = useNative && NativeBlockTopK.serves(q, cache.keys(layer));
        if (!nativeLayer && denseLayers.contains(layer)) {
            return AttentionKernel.DENSE.decode(layer, q, cache, step);
        }
        if (planned != step) {
            plan = plan(step.manager(), cache, step, nativeLayer);
            planned = step;
        }
        if (nativeLayer) {
            // dense layers and all-dense steps keep every page: exact dense attention on the same kernel
            return sparseNative(layer, q, cache, plan, denseLayers.contains(layer) || plan.allDense() ? plan.all() : plan.keep());
        }
        if (plan.allDense()) {
            return AttentionKernel.DENSE.decode(layer, q, cache, step);
        }
        return sparse(layer, q, cache, plan);
    }

    /**
     * Per sequence b with length L_b: pages_b = ceil(L_b / 16) pages exist; the first and the last
     * two are forced; the middle pages compete for k_b = B_b/16 − 3 slots; keep_b = min(pages_b,
     * k_b + 3). One gather of G = max_b keep_b pages serves the whole batch.
     *
     * <p>The page bias makes the order of the top-G deterministic where it matters: the last
     * (possibly partial) page ranks first, then the other forced pages, then the best candidates,
     * then pages that do not exist. So the attention mask depends only on ranks and lengths, not on
     * which pages won: rank 0 hides the positions past L_b, ranks from keep_b on are hidden. It is
     * built once per step, on the host, and shared by every sparse layer and head.
     */
    private Plan plan(NDManager m, KvCache cache, DecodeStep step, boolean nativeOnly) {
        int[] lengths = step.lengths();
        int b = lengths.length;
        int maxPages = 0;
        int gather = 0;
        boolean allDense = true;
        int[] keep = new int[b];
        int[] all = new int[b];
        for (int i = 0; i < b; i++) {
            int len = lengths[i];
            int pages = (len + PAGE - 1) / PAGE;
            all[i] = pages;
            keep[i] = keptPages(len, budgetAt.applyAsInt(len));
            allDense &= keep[i] == pages;
            maxPages = Math.max(maxPages, pages);
            gather = Math.max(gather, keep[i]);
        }
        if (allDense) {
            return new Plan(true, 0, 0, lengths, keep, all, null, null, null);
        }
        if (nativeOnly) {
            return new Plan(false, maxPages, gather, lengths, keep, all, null, null, null);
        }
        float[] bias = new float[b * maxPages];
        float[] mask = new float[b * gather * PAGE];
        for (int i = 0; i < b; i++) {
            int pages = (lengths[i] + PAGE - 1) / PAGE;
            boolean dense = keep[i] == pages;
            for (int p = 0; p < maxPages; p++) {
                float v;
                if (p >= pages) {
                    v = -BIG;                                  // no such page
                } else if (p == pages - 1) {
                    v = 3 * BIG;                               // the last page: always rank 0
                } else if (dense || p == 0 || p == pages - 2) {
                    v = 2 * BIG;                               // sink, local window, or dense sequence
                } else {
                    v = 0;                                     // competes on its landmark score
                }
                bias[i * maxPages + p] = v;
            }
            int lastStart = (pages - 1) * PAGE;
            for (int j = 0; j < gather * PAGE; j++) {
                boolean hidden = j < PAGE ? lastStart + j >= lengths[i] : j / PAGE >= keep[i];
                mask[i * gather * PAGE + j] = hidden ? NEG : 0f;
            }
        }
        long[] base = new long[b * cache.numKvHeads()];
        int capPages = cache.capacity() / PAGE;
        for (int i = 0; i < b; i++) {
            for (int h = 0; h < cache.numKvHeads(); h++) {
                base[i * cache.numKvHeads() + h] = (long) (i * cache.numKvHeads() + h) * capPages;
            }
        }
        return new Plan(false, maxPages, gather, lengths, keep, all,
                m.create(bias, new Shape(b, 1, 1, maxPages)),
                m.create(base, new Shape(b, cache.numKvHeads(), 1, 1)),
                m.create(mask, new Shape(b, 1, 1, (long) gather * PAGE)));
    }

    /** The native kernel: selection and attention over the pages in place (see {@link NativeBlockTopK}). */
    private NDArray sparseNative(int layer, NDArray q, KvCache cache, Plan plan, int[] keep) {
        Shape qs = q.getShape();                     // [B, kvh, r, D]
        NDArray out = q.getManager().create(qs, DataType.FLOAT32);
        NativeBlockTopK.attend(NativeLibraries.view(cache.keys(layer)), NativeLibraries.view(cache.values(layer)),
                NativeLibraries.view(cache.landmarks(layer)), NativeLibraries.view(q), NativeLibraries.view(out),
                plan.lengths(), keep, (int) qs.get(0), (int) qs.get(1), (int) qs.get(2), (int) qs.get(3),
                cache.capacity(), NativeLibraries.threads(), NativeBlockTopK.flags(cache.keys(layer).getDataType()));
        return out;
    }

    /** The libtorch kernel: landmark scores, top-k, page gathers and attention as tensor ops. */
    private NDArray sparse(int layer, NDArray q, KvCache cache, Plan plan) {
        if (plan.bias() == null) {                   // planned for the native kernel, which this layer cannot use
            plan = plan(planned.manager(), cache, planned, false);
            this.plan = plan;
        }
        NDManager m = q.getManager();
        Shape qs = q.getShape();                     // [B, kvh, r, D]
        long b = qs.get(0);
        long kvh = qs.get(1);
        long d = qs.get(3);
        long kept = (long) plan.gather() * PAGE;
        // 1. Score every page's landmark with the group's mean query: [B, kvh, 1, P].
        NDArray marks = cache.landmarks(layer).get(m, new NDIndex(":, :, :{}", plan.pages()));
        NDArray scores = q.mean(new int[] {2}, true).matMul(marks.transpose(0, 1, 3, 2));
        scores.addi(plan.bias());
        // 2. The G best pages: the last page, the other forced pages, then the best scores.
        NDArray rows = scores.topK(plan.gather(), -1, true, true).get(1);             // [B, kvh, 1, G] int64
        rows.addi(plan.pageBase());                                                   // page -> row of the page table
        // 3. Exact attention over the kept tokens: scores [B, kvh, r, G*16], softmax over the tokens.
        // The keys are used as soon as they are gathered and freed before the values are: the key copy
        // is still in cache when the product reads it, and the value copy (same size) reuses its memory
        // instead of faulting in fresh pages.
        NDArray att;
        try (NDManager keyScope = m.newSubManager()) {
            NDArray stored = cache.gatherKeyPages(layer, rows);                       // [B, kvh, 1, G, 16 D]
            stored.attach(keyScope);
            NDArray keys = KvCache.widened(stored);
            keys.attach(keyScope);
            att = q.matMul(keys.reshape(b, kvh, kept, d).transpose(0, 1, 3, 2));
        }
        att.addi(plan.mask());
        NDArray probs = att.softmax(-1);
        NDArray values = KvCache.widened(cache.gatherValuePages(layer, rows)).reshape(b, kvh, kept, d);
        return probs.matMul(values);                                                  // [B, kvh, r, D]
    }
}
