package io.tailguard.rollout.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.KvCache;
import io.tailguard.model.Qwen3Model;
import io.tailguard.rollout.sparse.BlockTopKAttention;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Batched, KV-cached generation: one chunked prefill of the distinct prompts (the samples of a
 * group share their prompt's prefill, copied into each one's cache), then one decode step per new
 * token for the whole batch. Sequence b samples from its own random stream, split in order from the
 * request's seed, so a request always produces the same tokens.
 */
public final class Generator {
    private final Qwen3Model model;
    private final AttentionKernel kernel;
    /** The element type of this generator's KV caches: FLOAT32, or FLOAT16 (half the bytes each step reads). */
    private DataType cacheType = DataType.FLOAT32;
    /** Where tokens are chosen: null for the model's device (a GPU chooses there), else as set (tests). */
    private Boolean chooseOnDevice;
    /** Whether the next generation keeps its prompts' prefill ({@link #keepPrompts}), and what it kept. */
    private boolean keep;
    private io.tailguard.model.PromptPrefill kept;

    public Generator(Qwen3Model model, AttentionKernel kernel) {
        this.model = model;
        this.kernel = kernel;
    }

    /** Dense decode, on {@link BlockTopKAttention#dense()}'s kernel. */
    public Generator(Qwen3Model model) {
        this(model, BlockTopKAttention.dense());
    }

    /**
     * From now on this generator's caches hold keys and values as {@code type}: FLOAT32 (the default)
     * or FLOAT16 ({@link KvCache}). On a float16 cache the prompts are still prefilled in float32 and
     * stored rounded: what decoding reads is approximated, the prefill's attention and first logits
     * are exact. A paired generation's reference keeps a float32 cache.
     */
    public Generator cacheType(DataType type) {
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("a KV cache holds float32 or float16, not " + type);
        }
        this.cacheType = type;
        return this;
    }

    /** The element type of this generator's KV caches. */
    public DataType cacheType() {
        return cacheType;
    }

    /** The decode attention kernel this generator uses. */
    public AttentionKernel kernel() {
        return kernel;
    }

    /**
     * Samples the request. On a GPU, a request {@link DeviceSampler} supports chooses its tokens on
     * the GPU (B ids and log-probs per step cross to the host, not B × V logits); elsewhere, and for
     * top-k or top-p sampling or a full-vocabulary capture, on the host in double ({@link TokenSampler}).
     */
    public GenerationResult generate(GenerationRequest req) {
        boolean device = chooseOnDevice != null ? chooseOnDevice : model.manager().getDevice().isGpu();
        if (device && DeviceSampler.supports(req, model.config().vocabSize())) {
            return runOnDevice(req);
        }
        return run(req, null, null, null, false).result();
    }

    /**
     * From now on each generation keeps its distinct prompts' prefill (this generator's model's KV
     * rows and last-position logits), for a dense scoring of its samples by the same weights to start
     * from ({@link #takePrompts}); one not taken is closed by the next. A paired generation keeps its
     * own prefill, not the reference's.
     */
    public Generator keepPrompts() {
        this.keep = true;
        return this;
    }

    /** What the last generation kept ({@link #keepPrompts}), now the caller's to close; null if nothing. */
    public io.tailguard.model.PromptPrefill takePrompts() {
        io.tailguard.model.PromptPrefill k = kept;
        kept = null;
        return k;
    }

    /** Chooses tokens on the model's device (true) or the host (false) wherever the model is; for tests. */
    Generator chooseOnDevice(boolean onDevice) {
        this.chooseOnDevice = onDevice;
        return this;
    }

    /**
     * A generation paired with a reference decode, measured as {@code bench rollout} measures:
     * this generator samples under its kernel exactly as {@link #generate} does (same tokens for the
     * same request), and in lockstep a second cache, prefilled from the same prompts, is fed the same
     * tokens and decoded under {@code reference} (for the in-run speedup, {@link
     * BlockTopKAttention#dense()}). Decode steps alternate one mode, then the other (which goes first
     * alternates too), so both see the same state of a shared, noisy machine; each mode's steps are
     * timed alone (the model's decode and reading its logits back, not the sampling). The result's
     * decode seconds are the sampled generation's own loop without the reference's steps.
     *
     * @param referenceLogprobs also keep the reference's temperature-1 log-probability of every fed
     *                          token (a check that it really decoded; costs one softmax per token)
     */
    public Paired generatePaired(GenerationRequest req, AttentionKernel reference, boolean referenceLogprobs) {
        return generatePaired(req, model, reference, referenceLogprobs);
    }

    /**
     * As above, the reference decoding with another model's weights: for a compressed actor (packed
     * or pruned weights) measured against the float32 policy, dense, the two modes then differ in the
     * weights they read as well as the pages. Both models have the same shapes (one cache layout).
     */
    public Paired generatePaired(GenerationRequest req, Qwen3Model referenceModel, AttentionKernel reference,
                                 boolean referenceLogprobs) {
        if (reference == null || referenceModel == null) {
            throw new IllegalArgumentException("a paired generation needs a reference model and kernel");
        }
        if (!referenceModel.config().equals(model.config())) {
            throw new IllegalArgumentException("the reference model's shapes differ from the generator's: "
                    + referenceModel.config() + " against " + model.config());
        }
        return run(req, null, referenceModel, reference, referenceLogprobs);
    }

    /**
     * What a paired generation measured. liveStepSeconds and referenceStepSeconds: the timed decode
     * steps of each mode (as many steps each); prefill seconds: each cache's prefill; KV positions:
     * over every decode step, layer and sequence of the batch (finished ones are still decoded), the
     * cache positions each kernel reads ({@link #kvPositionsRead}); referenceLogprobs: per sequence,
     * the reference's temperature-1 log-probability of each output token (null unless asked for).
     */
    public record Paired(GenerationResult result, double liveStepSeconds, double referencePrefillSeconds,
                         double referenceStepSeconds, long liveKvPositions, long referenceKvPositions,
                         List<float[]> referenceLogprobs) {}

    /**
     * KV positions one decode step reads under a kernel over all layers and sequences, the new
     * token's included: Block-Top-k's rule ({@link BlockTopKAttention#positionsRead}: every position
     * in a dense layer or where the context fits the budget, else the kept pages, the budget), every
     * position for any other kernel.
     */
    static long kvPositionsRead(AttentionKernel kernel, int layers, int[] lengths) {
        long n = 0;
        for (int layer = 0; layer < layers; layer++) {
            for (int len : lengths) {
                n += kernel instanceof BlockTopKAttention k ? k.positionsRead(layer, len) : len;
            }
        }
        return n;
    }

    /**
     * Teacher forcing through the decode path: feeds each prompt's given output tokens instead of
     * sampling, under this generator's attention kernel, and returns each position's temperature-1
     * distribution (all of the vocabulary when captureTopK is 0 or at least its size, else the top
     * captureTopK). The shadow probe uses it to learn what a trajectory's tokens would have cost
     * under another budget without sampling again.
     */
    public List<TokenDistributions> replay(List<int[]> prompts, List<int[]> outputs, int captureTopK) {
        if (prompts.size() != outputs.size()) {
            throw new IllegalArgumentException(prompts.size() + " prompts but " + outputs.size() + " outputs");
        }
        int longest = 1;
        for (int i = 0; i < outputs.size(); i++) {
            if (outputs.get(i).length == 0) {
                throw new IllegalArgumentException("output " + i + " is empty");
            }
            longest = Math.max(longest, outputs.get(i).length);
        }
        GenerationRequest req = new GenerationRequest(prompts, longest, new SamplingParams(1.0, 1.0, 0, 0L), java.util.Set.of(), 0,
                Math.max(0, captureTopK));
        List<TokenDistributions> out = new ArrayList<>();
        for (Generated g : run(req, outputs, null, null, false).result().sequences()) {
            out.add(g.distributions());
        }
        return out;
    }

    /**
     * Prefills {@code cache} (batch rowOf.length) with sequence i's prompt distinct[rowOf[i]]: the
     * distinct prompts in one batched prefill, then copied to every sequence that shares them.
     * Returns the logits after each sequence's prompt, [batch × vocab].
     */
    private static float[] prefill(NDManager m, Qwen3Model model, List<int[]> distinct, int[] rowOf, int maxPrompt, KvCache cache) {
        return prefillOnDevice(m, model, distinct, rowOf, maxPrompt, cache).toFloatArray();
    }

    /** The longest prompt, after checking every id and that prompt and new tokens fit the model. */
    private int checkedMaxPrompt(GenerationRequest req) {
        int vocab = model.config().vocabSize();
        int maxPrompt = 0;
        for (int i = 0; i < req.prompts().size(); i++) {
            int[] p = req.prompts().get(i);
            for (int id : p) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("prompt " + i + ": token id " + id + " outside vocabulary [0, " + vocab + ")");
                }
            }
            maxPrompt = Math.max(maxPrompt, p.length);
        }
        if (maxPrompt + req.maxNewTokens() - 1 > model.maxPositions()) {
            throw new IllegalArgumentException("prompt of " + maxPrompt + " tokens plus " + req.maxNewTokens()
                    + " new tokens exceeds max_position_embeddings " + model.maxPositions());
        }
        return maxPrompt;
    }

    /** Sequence i's random stream: the i-th split of the request's seed. */
    private static SplittableRandom[] streams(GenerationRequest req) {
        SplittableRandom root = new SplittableRandom(req.sampling().seed());
        SplittableRandom[] streams = new SplittableRandom[req.prompts().size()];
        for (int i = 0; i < streams.length; i++) {
            streams[i] = root.split();
        }
        return streams;
    }

    private List<Builder> builders(GenerationRequest req) {
        List<Builder> out = new ArrayList<>(req.prompts().size());
        for (int i = 0; i < req.prompts().size(); i++) {
            out.add(new Builder(req.maxNewTokens(), req.topLogprobs() > 0, req.captureTopK(), model.config().vocabSize()));
        }
        return out;
    }

    /** Ends a sequence that just took its token: a stop token, or its last allowed one. */
    private static void finishIfDone(Builder s, int id, GenerationRequest req) {
        if (req.stopTokens().contains(id)) {
            s.finish("stop");
        } else if (s.size == req.maxNewTokens()) {
            s.finish("length");
        }
    }

    /**
     * {@link #run} without forcing or pairing, its tokens chosen on the model's device
     * ({@link DeviceSampler}). Each step's logits stay there until they are chosen from; timing reads
     * as the host loop's (the prefill's time waits for its logits).
     */
    private GenerationResult runOnDevice(GenerationRequest req) {
        int b = req.prompts().size();
        int maxPrompt = checkedMaxPrompt(req);
        int capacity = maxPrompt + req.maxNewTokens() - 1;
        SplittableRandom[] streams = streams(req);
        List<Builder> out = builders(req);
        io.tailguard.model.SharedPrompts shared = io.tailguard.model.SharedPrompts.of(req.prompts());
        boolean greedy = req.sampling().isGreedy();
        double prefillSeconds;
        double decodeSeconds;
        int steps = 0;
        try (NDManager m = model.manager().newSubManager();
             KvCache cache = new KvCache(m, model.config(), b, capacity, cacheType)) {
            long t0 = System.nanoTime();
            NDManager held = m.newSubManager();   // the logits being chosen from, and their temporaries
            NDArray logits = keep ? prefillKeeping(held, shared.distinct(), shared.rowOf(), maxPrompt, cache)
                    : prefillOnDevice(held, model, shared.distinct(), shared.rowOf(), maxPrompt, cache);
            logits.get(new NDIndex("0, 0")).toFloatArray();   // waits for the prefill (a GPU runs ahead)
            prefillSeconds = (System.nanoTime() - t0) / 1e9;
            long[] next = new long[b];
            double[] u = new double[b];
            long t1 = System.nanoTime();
            while (true) {
                for (int i = 0; i < b; i++) {
                    u[i] = greedy || out.get(i).done ? 0 : streams[i].nextDouble();   // as the host: one draw per pick
                }
                DeviceSampler.Choice c = DeviceSampler.choose(logits, req.sampling(), u, req.topLogprobs(), req.captureTopK());
                held.close();
                boolean allDone = true;
                for (int i = 0; i < b; i++) {
                    Builder s = out.get(i);
                    if (s.done) {
                        continue;
                    }
                    int id = (int) c.ids()[i];
                    s.add(id, c.logprobs()[i], c.topIds() == null ? null : c.topIds()[i],
                            c.topLogprobs() == null ? null : c.topLogprobs()[i]);
                    if (c.capIds() != null) {
                        s.captureTop(c.capIds()[i], c.capLogprobs()[i]);
                    }
                    next[i] = id;
                    finishIfDone(s, id, req);
                    allDone &= s.done;
                }
                if (allDone) {
                    break;
                }
                held = m.newSubManager();
                logits = model.decode(next, cache, kernel, held);
                steps++;
            }
            decodeSeconds = (System.nanoTime() - t1) / 1e9;
        }
        List<Generated> seqs = new ArrayList<>(b);
        for (int i = 0; i < b; i++) {
            seqs.add(out.get(i).build(req.prompts().get(i)));
        }
        return new GenerationResult(seqs, prefillSeconds, decodeSeconds, steps);
    }

    /**
     * {@link #prefillOnDevice} by this generator's model that also keeps the distinct prompts' rows
     * and logits ({@link #keepPrompts}): they are prefilled into a cache of their own, which the
     * batch's cache copies its rows from, and that cache is kept rather than closed.
     */
    private NDArray prefillKeeping(NDManager into, List<int[]> distinct, int[] rowOf, int maxPrompt, KvCache cache) {
        if (kept != null) {
            kept.close();
            kept = null;
        }
        NDManager own = model.manager().newSubManager();
        try {
            Padded p = Padded.of(distinct, maxPrompt);
            KvCache once = new KvCache(own, model.config(), distinct.size(), maxPrompt, DataType.FLOAT32);
            NDArray sharedLogits = model.prefill(p.ids(own), p.lengths(), once);
            sharedLogits.attach(own);
            cache.copyRowsFrom(once, rowOf);
            NDArray out = rowsOf(sharedLogits, rowOf, into);
            out.attach(into);
            kept = new io.tailguard.model.PromptPrefill(own, distinct, once, sharedLogits);
            return out;
        } catch (RuntimeException e) {
            own.close();
            throw e;
        }
    }

    /** {@link #prefill} with the logits [batch, V] left on the device, in {@code into}. */
    private static NDArray prefillOnDevice(NDManager into, Qwen3Model model, List<int[]> distinct, int[] rowOf, int maxPrompt,
                                           KvCache cache) {
        int u = distinct.size();
        Padded p = Padded.of(distinct, maxPrompt);
        if (u == rowOf.length && cache.dataType() == DataType.FLOAT32) {   // all distinct: rowOf is the identity
            return model.prefill(p.ids(into), p.lengths(), cache);
        }
        // the prompts are prefilled in float32 and only stored rounded: a float16 cache approximates what
        // decoding reads, while the prefill (compute-bound, where rounding saves nothing) stays exact, so
        // its rows are the dense scoring's too
        try (KvCache once = new KvCache(into, model.config(), u, maxPrompt, DataType.FLOAT32)) {
            NDArray sharedLogits = model.prefill(p.ids(into), p.lengths(), once);
            cache.copyRowsFrom(once, rowOf);
            return rowsOf(sharedLogits, rowOf, into);
        }
    }

    /** Distinct prompts right-padded to maxPrompt ids each, and their lengths. */
    private record Padded(long[] padded, int maxPrompt, int[] lengths) {
        static Padded of(List<int[]> distinct, int maxPrompt) {
            long[] padded = new long[distinct.size() * maxPrompt];
            int[] lengths = new int[distinct.size()];
            for (int r = 0; r < lengths.length; r++) {
                int[] p = distinct.get(r);
                lengths[r] = p.length;
                for (int j = 0; j < p.length; j++) {
                    padded[r * maxPrompt + j] = p[j];
                }
            }
            return new Padded(padded, maxPrompt, lengths);
        }

        NDArray ids(NDManager m) {
            return m.create(padded, new Shape(lengths.length, maxPrompt));
        }
    }

    /** Row rowOf[i] of the distinct prompts' logits for each sequence i. */
    private static NDArray rowsOf(NDArray sharedLogits, int[] rowOf, NDManager into) {
        long[] rows = new long[rowOf.length];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = rowOf[i];
        }
        return sharedLogits.get(new NDIndex("{}", into.create(rows)));
    }

    private Paired run(GenerationRequest req, List<int[]> forced, Qwen3Model referenceModel, AttentionKernel reference,
                       boolean referenceLogprobs) {
        int b = req.prompts().size();
        int vocab = model.config().vocabSize();
        int maxPrompt = checkedMaxPrompt(req);
        // The last sampled token is never fed back, so the cache needs one slot less than that.
        int capacity = maxPrompt + req.maxNewTokens() - 1;
        SplittableRandom[] streams = streams(req);
        List<Builder> out = builders(req);
        // a prompt several sequences share (a GRPO group's samples) is prefilled once
        io.tailguard.model.SharedPrompts shared = io.tailguard.model.SharedPrompts.of(req.prompts());
        List<int[]> distinct = shared.distinct();
        int[] rowOf = shared.rowOf();
        double prefillSeconds;
        double decodeSeconds;
        int steps = 0;
        boolean paired = reference != null;
        double refPrefillSeconds = 0;
        long liveStepNs = 0;
        long refStepNs = 0;
        long refOverheadNs = 0;
        long livePositions = 0;
        long refPositions = 0;
        int layers = model.config().numLayers();
        float[][] refLogp = paired && referenceLogprobs ? new float[b][req.maxNewTokens()] : null;
        try (NDManager m = model.manager().newSubManager();
             KvCache cache = new KvCache(m, model.config(), b, capacity, cacheType);
             KvCache refCache = paired ? new KvCache(m, model.config(), b, capacity) : null) {
            long t0 = System.nanoTime();
            float[] logits = keep ? prefillKeeping(m, distinct, rowOf, maxPrompt, cache).toFloatArray()
                    : prefill(m, model, distinct, rowOf, maxPrompt, cache);
            prefillSeconds = (System.nanoTime() - t0) / 1e9;
            float[] refLogits = null;
            if (paired) {
                long r0 = System.nanoTime();
                refLogits = prefill(m, referenceModel, distinct, rowOf, maxPrompt, refCache);
                refPrefillSeconds = (System.nanoTime() - r0) / 1e9;
            }
            long[] next = new long[b];
            long t1 = System.nanoTime();
            while (true) {
                boolean allDone = true;
                for (int i = 0; i < b; i++) {
                    Builder s = out.get(i);
                    if (s.done) {
                        continue; // keeps its slot in the batch; its last token is fed again and ignored
                    }
                    double[] logp = TokenSampler.logProbs(logits, i * vocab, vocab, req.sampling().temperature());
                    int id = forced == null ? TokenSampler.pick(logp, req.sampling(), streams[i]) : forced.get(i)[s.size];
                    if (refLogp != null) {
                        long c0 = System.nanoTime();
                        refLogp[i][s.size] = (float) TokenSampler.logProbs(refLogits, i * vocab, vocab, 1.0)[id];
                        refOverheadNs += System.nanoTime() - c0;
                    }
                    s.add(id, logp, req.topLogprobs());
                    s.capture(req.sampling().temperature() == 1 ? logp : TokenSampler.logProbs(logits, i * vocab, vocab, 1.0));
                    next[i] = id;
                    if (forced != null && s.size == forced.get(i).length) {
                        s.finish("forced");
                    } else if (req.stopTokens().contains(id)) {
                        s.finish("stop");
                    } else if (s.size == req.maxNewTokens()) {
                        s.finish("length");
                    }
                    allDone &= s.done;
                }
                if (allDone) {
                    break;
                }
                if (!paired) {
                    try (NDManager step = m.newSubManager()) {
                        NDArray l = model.decode(next, cache, kernel, step);
                        logits = l.toFloatArray();
                    }
                } else {
                    // alternate which mode goes first, so neither always finds the other's data in cache
                    boolean liveFirst = steps % 2 == 0;
                    long[] ns = new long[1];
                    float[] live = null;
                    float[] ref = null;
                    for (int k = 0; k < 2; k++) {
                        boolean isLive = liveFirst == (k == 0);
                        float[] l = timedStep(isLive ? model : referenceModel, next, isLive ? cache : refCache, isLive ? kernel : reference, m, ns);
                        if (isLive) {
                            live = l;
                            liveStepNs += ns[0];
                        } else {
                            ref = l;
                            refStepNs += ns[0];
                            refOverheadNs += ns[0];
                        }
                    }
                    logits = live;
                    refLogits = ref;
                    long c0 = System.nanoTime(); // measurement overhead: not the sampled generation's time
                    livePositions += kvPositionsRead(kernel, layers, cache.lengths());
                    refPositions += kvPositionsRead(reference, layers, refCache.lengths());
                    refOverheadNs += System.nanoTime() - c0;
                }
                steps++;
            }
            decodeSeconds = (System.nanoTime() - t1 - refOverheadNs) / 1e9;
        }
        List<Generated> seqs = new ArrayList<>(b);
        List<float[]> refOut = refLogp == null ? null : new ArrayList<>(b);
        for (int i = 0; i < b; i++) {
            seqs.add(out.get(i).build(req.prompts().get(i)));
            if (refOut != null) {
                refOut.add(Arrays.copyOf(refLogp[i], out.get(i).size));
            }
        }
        GenerationResult result = new GenerationResult(seqs, prefillSeconds, decodeSeconds, steps);
        return new Paired(result, liveStepNs / 1e9, refPrefillSeconds, refStepNs / 1e9, livePositions, refPositions, refOut);
    }

    /** One decode step on a cache under a kernel, its logits read back; its nanoseconds into ns[0]. */
    private static float[] timedStep(Qwen3Model model, long[] next, KvCache cache, AttentionKernel k, NDManager m, long[] ns) {
        try (NDManager step = m.newSubManager()) {
            long t0 = System.nanoTime();
            float[] l = model.decode(next, cache, k, step).toFloatArray();
            ns[0] = System.nanoTime() - t0;
            return l;
        }
    }

    /** Accumulates one sequence's output. */
    private static final class Builder {
        final int[] ids;
        final float[] logprobs;
        final int[][] topIds;
        final float[][] topLogprobs;
        final int captureK;      // -1: none; else how many of the vocabulary (vocab: all)
        final int[][] capIds;    // null when capturing full distributions
        final float[][] capLogprobs;
        int size;
        boolean done;
        String reason;

        Builder(int max, boolean withTop, int captureTopK, int vocab) {
            ids = new int[max];
            logprobs = new float[max];
            topIds = withTop ? new int[max][] : null;
            topLogprobs = withTop ? new float[max][] : null;
            captureK = captureTopK < 0 ? -1 : (captureTopK == 0 || captureTopK >= vocab ? vocab : captureTopK);
            capIds = captureK >= 0 && captureK < vocab ? new int[max][] : null;
            capLogprobs = captureK >= 0 ? new float[max][] : null;
        }

        /** Records the temperature-1 distribution of the position just added. */
        void capture(double[] logp1) {
            if (capLogprobs == null) {
                return;
            }
            int t = size - 1;
            if (capIds == null) {
                float[] all = new float[logp1.length];
                for (int v = 0; v < all.length; v++) {
                    all[v] = (float) logp1[v];
                }
                capLogprobs[t] = all;
            } else {
                int[] top = TokenSampler.topIds(logp1, captureK);
                float[] vals = new float[top.length];
                for (int j = 0; j < top.length; j++) {
                    vals[j] = (float) logp1[top[j]];
                }
                capIds[t] = top;
                capLogprobs[t] = vals;
            }
        }

        /** A token chosen elsewhere ({@link DeviceSampler}): its log-prob and alternatives as given. */
        void add(int id, float logprob, int[] top, float[] topValues) {
            ids[size] = id;
            logprobs[size] = logprob;
            if (topIds != null) {
                topIds[size] = top;
                topLogprobs[size] = topValues;
            }
            size++;
        }

        /** The top of the temperature-1 distribution of the position just added, chosen elsewhere. */
        void captureTop(int[] top, float[] values) {
            if (capLogprobs != null) {
                capIds[size - 1] = top;
                capLogprobs[size - 1] = values;
            }
        }

        void add(int id, double[] logp, int topK) {
            ids[size] = id;
            logprobs[size] = (float) logp[id];
            if (topIds != null) {
                int[] top = TokenSampler.topIds(logp, topK);
                float[] vals = new float[top.length];
                for (int j = 0; j < top.length; j++) {
                    vals[j] = (float) logp[top[j]];
                }
                topIds[size] = top;
                topLogprobs[size] = vals;
            }
            size++;
        }

        void finish(String why) {
            done = true;
            reason = why;
        }

        Generated build(int[] prompt) {
            return new Generated(prompt.clone(), Arrays.copyOf(ids, size), Arrays.copyOf(logprobs, size),
                    topIds == null ? null : Arrays.copyOf(topIds, size),
                    topLogprobs == null ? null : Arrays.copyOf(topLogprobs, size), reason,
                    capLogprobs == null ? null : new TokenDistributions(
                            capIds == null ? null : Arrays.copyOf(capIds, size), Arrays.copyOf(capLogprobs, size)));
        }
    }
}
