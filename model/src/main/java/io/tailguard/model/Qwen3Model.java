package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The Qwen3 decoder (docs/algorithms.md, "The policy model (Qwen3)") on DJL's PyTorch engine.
 *
 * <p>Three ways in: {@link #forward} (full causal pass, no cache: training and teacher-forced
 * scoring), {@link #prefill} (chunked, fills a {@link KvCache}) and {@link #decode} (one token per
 * sequence through an {@link AttentionKernel}). Results are attached to the manager of the input
 * ids; intermediates are freed when each call returns.
 */
public final class Qwen3Model implements AutoCloseable {
    private final ModelConfig config;
    private final NDManager manager;
    private final Map<String, NDArray> weights;
    private final Map<String, NDArray> parameters;
    private final NDArray embedding; // [V, H]
    private final NDArray lmHead;    // [V, H]
    private final RmsNorm finalNorm;
    private final Rotary rotary;
    private final List<DecoderLayer> layers = new ArrayList<>();
    private final AdapterSlot adapter = new AdapterSlot();
    /** The native decoder layer's weights, gathered on first use; NO_NATIVE where the model cannot take it. */
    private volatile Object nativeWeights;
    private static final Object NO_NATIVE = new Object();
    private static final java.util.regex.Pattern LINEAR_NAME =
            java.util.regex.Pattern.compile("model\\.layers\\.(\\d+)\\.(\\w+)\\.(\\w+_proj)\\.weight");
    /** A packed model's linears, [layer][Projection ordinal][module in row order]; null for a float32 model. */
    private final PackedLinear[][][] packed;

    /**
     * Takes ownership of the weights (Hugging Face names) and of their manager. q/k/v and gate/up
     * are stored fused (one product each); the named weights become views into the fused tensors,
     * so reading or updating a named weight reads or updates what the model computes with.
     */
    public Qwen3Model(ModelConfig config, Map<String, NDArray> weights, NDManager manager) {
        this(config, weights, manager, null);
    }

    private Qwen3Model(ModelConfig config, Map<String, NDArray> weights, NDManager manager, PackedLinear[][][] packed) {
        this.config = config;
        this.packed = packed;
        adapter.setPacked(packed);
        this.manager = manager;
        Map<String, NDArray> named = new java.util.LinkedHashMap<>(weights);
        List<NDArray> qkv = new ArrayList<>();
        List<NDArray> gateUp = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            qkv.add(fuse(named, p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"));
            gateUp.add(fuse(named, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"));
        }
        this.weights = java.util.Collections.unmodifiableMap(named);
        Map<String, NDArray> leaves = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : named.entrySet()) {
            if (!e.getKey().matches(".*\\.(q|k|v|gate|up)_proj\\.weight")) {
                leaves.put(e.getKey(), e.getValue());
            }
        }
        for (int i = 0; i < config.numLayers(); i++) {
            leaves.put("model.layers." + i + ".self_attn.qkv_proj.weight", qkv.get(i));
            leaves.put("model.layers." + i + ".mlp.gate_up_proj.weight", gateUp.get(i));
        }
        this.parameters = java.util.Collections.unmodifiableMap(leaves);
        this.embedding = need("model.embed_tokens.weight");
        this.lmHead = config.tieWordEmbeddings() ? embedding : need("lm_head.weight");
        this.finalNorm = new RmsNorm(need("model.norm.weight"), config.rmsNormEps());
        this.rotary = new Rotary(manager, config, config.maxPositionEmbeddings());
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            Attention attention = new Attention(i, config, qkv.get(i), need(p + "self_attn.o_proj.weight"),
                    new RmsNorm(need(p + "self_attn.q_norm.weight"), config.rmsNormEps()),
                    new RmsNorm(need(p + "self_attn.k_norm.weight"), config.rmsNormEps()),
                    rotary, adapter);
            Mlp mlp = new Mlp(i, gateUp.get(i), need(p + "mlp.down_proj.weight"), adapter);
            layers.add(new DecoderLayer(new RmsNorm(need(p + "input_layernorm.weight"), config.rmsNormEps()),
                    attention, new RmsNorm(need(p + "post_attention_layernorm.weight"), config.rmsNormEps()), mlp));
        }
    }

    /** Builds a model on a device from host weights (float32, Hugging Face names and shapes). */
    public static Qwen3Model create(ModelConfig config, Map<String, float[]> weights, ai.djl.Device device) {
        NDManager manager = NDManager.newBaseManager(device);
        Map<String, NDArray> arrays = new java.util.HashMap<>();
        for (Map.Entry<String, long[]> e : ParameterShapes.of(config).entrySet()) {
            float[] w = weights.get(e.getKey());
            if (w == null) {
                manager.close();
                throw new IllegalArgumentException("missing tensor " + e.getKey());
            }
            arrays.put(e.getKey(), manager.create(w, new Shape(e.getValue())));
        }
        return new Qwen3Model(config, arrays, manager);
    }

    /**
     * A model whose decoder linears (q/k/v/o, gate/up/down of every layer) stay packed
     * ({@link PackedLinear}); the other tensors (embedding, norms, an untied lm_head) are float32 on
     * the host, by Hugging Face name. Decode steps multiply with the packed weights in the native
     * decoder layer; other passes (prefill, forward) and a libtorch decode step
     * ({@code -Dtailguard.decode.kernel=torch}) dequantize one product at a time into a temporary
     * float32 weight. Takes ownership of the linears, also when it refuses them. The linears'
     * entries of {@link #weights()} and {@link #parameters()} are empty [0, in] placeholders: a
     * packed model is for generation, not training; {@link #hostWeights()} dequantizes them.
     */
    public static Qwen3Model packed(ModelConfig config, Map<String, float[]> dense, Map<String, PackedLinear> linears,
                                    ai.djl.Device device) {
        try {
            if (device.isGpu()) {
                throw new IllegalArgumentException("packed weights decode on the CPU only, not on " + device);
            }
            PackedLinear[][][] byLayer = new PackedLinear[config.numLayers()][Projection.values().length][];
            for (int l = 0; l < config.numLayers(); l++) {
                for (Projection p : Projection.values()) {
                    PackedLinear[] parts = new PackedLinear[p.modules().size()];
                    for (int j = 0; j < parts.length; j++) {
                        String name = "model.layers." + l + "." + p.block() + "." + p.modules().get(j) + ".weight";
                        PackedLinear w = linears.get(name);
                        long[] shape = Projection.shape(config, p.modules().get(j));
                        if (w == null) {
                            throw new IllegalArgumentException("packed model lacks linear " + name);
                        }
                        if (w.rows() != shape[0] || w.cols() != shape[1]) {
                            throw new IllegalArgumentException(name + ": packed [" + w.rows() + ", " + w.cols()
                                    + "], the config needs [" + shape[0] + ", " + shape[1] + "]");
                        }
                        parts[j] = w;
                    }
                    byLayer[l][p.ordinal()] = parts;
                }
            }
            NDManager manager = NDManager.newBaseManager(device);
            Map<String, NDArray> arrays = new java.util.HashMap<>();
            try {
                for (Map.Entry<String, long[]> e : ParameterShapes.of(config).entrySet()) {
                    if (linears.containsKey(e.getKey())) {
                        arrays.put(e.getKey(), manager.zeros(new Shape(0, e.getValue()[1]), DataType.FLOAT32));
                        continue;
                    }
                    float[] w = dense.get(e.getKey());
                    if (w == null) {
                        throw new IllegalArgumentException("missing tensor " + e.getKey());
                    }
                    arrays.put(e.getKey(), manager.create(w, new Shape(e.getValue())));
                }
                return new Qwen3Model(config, arrays, manager, byLayer);
            } catch (RuntimeException e) {
                manager.close();
                throw e;
            }
        } catch (RuntimeException e) {
            linears.values().forEach(PackedLinear::close);
            throw e;
        }
    }

    /** Whether the decoder linears are packed ({@link #packed}). */
    public boolean isPacked() {
        return packed != null;
    }

    /** Bytes the decoder linears take: packed in memory, or as float32. */
    public long linearBytes() {
        long total = 0;
        for (int l = 0; l < config.numLayers(); l++) {
            for (Projection p : Projection.values()) {
                for (String m : p.modules()) {
                    long[] s = Projection.shape(config, m);
                    total += packed == null ? 4L * s[0] * s[1] : packed[l][p.ordinal()][p.modules().indexOf(m)].bytes();
                }
            }
        }
        return total;
    }

    /** Concatenates the named [rows, H] weights along rows and replaces each by its view. */
    private NDArray fuse(Map<String, NDArray> named, String... names) {
        ai.djl.ndarray.NDList parts = new ai.djl.ndarray.NDList();
        for (String n : names) {
            NDArray w = named.get(n);
            if (w == null) {
                throw new IllegalArgumentException("missing tensor " + n);
            }
            parts.add(w);
        }
        NDArray fused = ai.djl.ndarray.NDArrays.concat(parts, 0);
        long row = 0;
        for (int j = 0; j < names.length; j++) {
            long rows = parts.get(j).getShape().get(0);
            named.put(names[j], fused.get(new NDIndex("{}:{}", row, row + rows)));
            parts.get(j).close();
            row += rows;
        }
        return fused;
    }

    private NDArray need(String name) {
        NDArray w = weights.get(name);
        if (w == null) {
            throw new IllegalArgumentException("missing tensor " + name);
        }
        return w;
    }

    public ModelConfig config() {
        return config;
    }

    public NDManager manager() {
        return manager;
    }

    /**
     * The weights by Hugging Face name, for saving. q/k/v and gate/up are views into the fused
     * {@link #parameters()}, so they always show the current values.
     */
    public Map<String, NDArray> weights() {
        return weights;
    }

    /**
     * The tensors the model computes with, each once: what an optimizer updates (in place) and
     * what gradients attach to. Fused q/k/v appear as {@code ...self_attn.qkv_proj.weight} and
     * gate/up as {@code ...mlp.gate_up_proj.weight}; a tied lm_head is the embedding.
     */
    public Map<String, NDArray> parameters() {
        return parameters;
    }

    /** Host copies of the weights by Hugging Face name (float32), e.g. to write a checkpoint. */
    public Map<String, float[]> hostWeights() {
        Map<String, float[]> out = new java.util.LinkedHashMap<>();
        for (String name : ParameterShapes.of(config).keySet()) {
            PackedLinear p = packedLinear(name);
            out.put(name, p != null ? p.dequantize() : weights.get(name).toFloatArray());
        }
        return out;
    }

    /** The packed linear of a Hugging Face weight name, or null. */
    private PackedLinear packedLinear(String name) {
        if (packed == null) {
            return null;
        }
        java.util.regex.Matcher m = LINEAR_NAME.matcher(name);
        if (!m.matches()) {
            return null;
        }
        Projection p = Projection.of(m.group(3));
        return packed[Integer.parseInt(m.group(1))][p.ordinal()][p.modules().indexOf(m.group(3))];
    }

    /**
     * Attaches a weight adapter (a LoRA, say) that every later forward, prefill and decode consults;
     * null detaches it. While it is inactive the model computes exactly what it computes without one.
     */
    public void attach(WeightAdapter weightAdapter) {
        adapter.set(weightAdapter);
    }

    /** The attached weight adapter, or null. */
    public WeightAdapter adapter() {
        return adapter.get();
    }

    /** Most positions a sequence may reach (max_position_embeddings; the RoPE tables grow to what is used). */
    public int maxPositions() {
        return rotary.maxPositions();
    }

    /** Final-normed hidden states of a full causal pass: ids [B, T] (int64, right-padded) -> [B, T, H]. */
    public NDArray hiddenStates(NDArray ids) {
        return hiddenStates(ids, null);
    }

    /**
     * Final-normed hidden states of a full causal pass in which each layer's attention also obeys
     * {@code mask} (null: plain causal): ids [B, T] -> [B, T, H].
     */
    public NDArray hiddenStates(NDArray ids, ForwardMask mask) {
        checkPositions((int) ids.getShape().get(1));
        try (NDManager scope = manager.newSubManager()) {
            TrainingTape tape = mask == null ? TrainingTape.recording() : null;
            NDArray x = embed(ids, tape);
            keep(scope, tape, x);
            for (DecoderLayer layer : layers) {
                if (tape != null && TrainingTape.serves(x)) {
                    if (tape.runsWhole(layer)) {
                        x = tape.layer(layer, x, false);
                        continue;
                    }
                    x = tape.cut(x);
                }
                x = perLayer(x, scope, l -> layer.forward(l, 0, null, mask));
            }
            NDArray out = finalNorm.forward(x);
            out.attach(ids.getManager());
            return out;
        }
    }

    /**
     * Training forward of continuations of one prompt: prompt [1, P] runs once, and the rows
     * continuations [G, C] at positions [P, P + C) attend to its keys and values and to their own,
     * causally, layer by layer. The same logits as a full pass over every prompt + continuation
     * row, without the prompt's work G times; gradients from every row flow into the prompt's
     * computation. Returns {the logits after the prompt's last token [1, V], the logits at every
     * continuation position [G, C, V]}, attached to prompt's manager.
     */
    public NDArray[] forwardShared(NDArray prompt, NDArray continuations) {
        NDArray[] hidden = hiddenShared(prompt, continuations);
        NDArray last = logits(hidden[0]);
        NDArray all = logits(hidden[1]);
        hidden[0].close();
        hidden[1].close();
        return new NDArray[] {last, all};
    }

    /**
     * {@link #forwardShared} up to the final norm: {the final-normed hidden state after the prompt's
     * last token [1, H], those at every continuation position [G, C, H]}, attached to prompt's
     * manager; the vocabulary projection is the caller's (only where its logits are used).
     */
    public NDArray[] hiddenShared(NDArray prompt, NDArray continuations) {
        int p = (int) prompt.getShape().get(1);
        int c = (int) continuations.getShape().get(1);
        if (prompt.getShape().get(0) != 1 || p < 1 || c < 1) {
            throw new IllegalArgumentException("forwardShared takes one prompt [1, P] and continuations [G, C], got "
                    + prompt.getShape() + " and " + continuations.getShape());
        }
        checkPositions(p + c);
        try (NDManager scope = manager.newSubManager()) {
            TrainingTape tape = TrainingTape.recording();
            NDArray xp = embed(prompt, tape);
            NDArray xc = embed(continuations, tape);
            keep(scope, tape, xp, xc);
            for (DecoderLayer layer : layers) {
                if (tape != null && TrainingTape.serves(xp)) {
                    if (tape.runsWhole(layer)) {
                        xp = tape.layer(layer, xp, false);
                        xc = tape.layer(layer, xc, true);
                        continue;
                    }
                    xp = tape.cut(xp);
                    xc = tape.cut(xc);
                }
                try (NDManager local = scope.newSubManager()) {
                    xp.tempAttach(local);
                    xc.tempAttach(local);
                    NDArray[] pkv = layer.forwardKv(xp);
                    NDArray yc = layer.forwardOver(xc, pkv[1], pkv[2]);
                    pkv[0].attach(scope);
                    yc.attach(scope);
                    xp = pkv[0];
                    xc = yc;
                }
            }
            NDArray last = finalNorm.forward(xp.get(new NDIndex(":, {}:{}", p - 1, p))).reshape(1, -1);
            NDArray all = finalNorm.forward(xc);
            last.attach(prompt.getManager());
            all.attach(prompt.getManager());
            return new NDArray[] {last, all};
        }
    }

    /**
     * lm_head: [..., H] -> [..., V]. A few rows (a decode step's, a prefill's last positions) go
     * through the native decode library's row-split product when it serves them: at a vocabulary of
     * 151,936 this one product reads more weight bytes than any layer, and with so few rows
     * libtorch's GEMM took over twice as long as the native product (105-113 ms against 40 ms at
     * batch 8, quiet 2-vCPU host). Everything else (whole sequences, and any
     * product while autograd records on this thread) stays on libtorch.
     */
    public NDArray logits(NDArray hidden) {
        if (nativeLogits(hidden)) {
            int rows = (int) hidden.getShape().get(0);
            int vocab = config.vocabSize();
            NDArray out = hidden.getManager().create(new Shape(rows, vocab), DataType.FLOAT32);
            NativeDecode.project(NativeLibraries.view(hidden), NativeLibraries.view(lmHead), NativeLibraries.view(out),
                    rows, config.hiddenSize(), vocab, NativeLibraries.threads());
            return out;
        }
        return Linear.apply(hidden, lmHead);
    }

    /**
     * The log-prob of each row's target under the model: log softmax(lm_head(rows))[i, targets[i]]
     * for final-normed hidden states rows [n, H] -> [n], differentiable in rows and in the lm_head.
     * While a {@link TrainingTape} records, and its kernels serve, one native pass over the lm_head
     * gives the log-probs and the tape's walk back gives the gradients, with no [n, V] tensor beyond
     * the logits; otherwise the libtorch ops (lm_head product, log-softmax, gather). Targets must
     * lie in [0, vocabulary).
     */
    public NDArray targetLogProbs(NDArray rows, int[] targets) {
        return targetScores(rows, targets, false).logProbs();
    }

    /**
     * The log-probs of {@link #targetLogProbs} [n] and, when {@code entropy}, the entropy of each
     * row's distribution (in nats, outside the autograd graph; else null).
     */
    public record TargetScores(NDArray logProbs, float[] entropy) {}

    /** {@link #targetLogProbs} with, when asked, each row's entropy, from the same pass over the vocabulary. */
    public TargetScores targetScores(NDArray rows, int[] targets, boolean entropy) {
        int v = config.vocabSize();
        for (int i = 0; i < targets.length; i++) {
            if (targets[i] < 0 || targets[i] >= v) {
                throw new IllegalArgumentException("target " + targets[i] + " of row " + i + " is outside the vocabulary [0, " + v + ")");
            }
        }
        TrainingTape tape = TrainingTape.recording();
        if (VocabularyProjection.serves(tape, rows, lmHead)) {
            float[] h = entropy ? new float[targets.length] : null;
            return new TargetScores(VocabularyProjection.targetLogProbs(tape, rows, lmHead, targets, h), h);
        }
        long[] t = new long[targets.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = targets[i];
        }
        NDManager m = rows.getManager();
        NDArray logp = logits(rows).logSoftmax(-1);                                       // [n, V]
        float[] h = null;
        if (entropy) {
            try (NDArray detached = logp.stopGradient(); NDArray plogp = detached.exp().muli(detached);
                 NDArray sum = plogp.sum(new int[] {1}).neg()) {
                h = sum.toFloatArray();
            }
        }
        return new TargetScores(logp.gather(m.create(t, new Shape(t.length, 1)), 1).reshape(t.length), h);
    }

    /** Rows up to which {@link #logits} may use the native product (decode batches, prompt groups). */
    private static final int NATIVE_LOGITS_ROWS = 64;

    private boolean nativeLogits(NDArray hidden) {
        Shape s = hidden.getShape();
        return s.dimension() == 2 && s.get(0) >= 1 && s.get(0) <= NATIVE_LOGITS_ROWS
                && NativeDecode.LIBRARY.preferred()
                && NativeDecode.servable(hidden) && NativeDecode.servable(lmHead)
                && !ai.djl.pytorch.jni.JniUtils.isGradMode();   // a GradientCollector is recording: libtorch
    }

    /** Full causal pass: ids [B, T] -> logits [B, T, V]. */
    public NDArray forward(NDArray ids) {
        return forward(ids, null);
    }

    /**
     * Full causal pass with each layer's attention restricted by {@code mask} (null: plain causal),
     * e.g. to the pages a sparse decode kernel would have kept: ids [B, T] -> logits [B, T, V].
     */
    public NDArray forward(NDArray ids, ForwardMask mask) {
        NDArray hidden = hiddenStates(ids, mask);
        NDArray out = logits(hidden);
        hidden.close();
        return out;
    }

    /**
     * Prefills the cache with right-padded prompts ids [B, T] of the given lengths (each ≥ 1), in
     * chunks of {@link Attention#CHUNK} positions. Returns the logits after each prompt's last
     * token, [B, V].
     */
    public NDArray prefill(NDArray ids, int[] promptLengths, KvCache cache) {
        int b = (int) ids.getShape().get(0);
        int t = (int) ids.getShape().get(1);
        checkPositions(t);
        for (int i = 0; i < b; i++) {
            if (promptLengths[i] < 1 || promptLengths[i] > t) {
                throw new IllegalArgumentException("prompt " + i + " length " + promptLengths[i] + " not in [1, " + t + "]");
            }
            if (cache.length(i) != 0) {
                throw new IllegalStateException("prefill needs an empty cache");
            }
        }
        if (t > cache.capacity()) {
            throw new IllegalArgumentException("prompt of " + t + " tokens exceeds KV cache capacity " + cache.capacity());
        }
        try (NDManager scope = manager.newSubManager()) {
            NDArray lastHidden = scope.zeros(new Shape(b, config.hiddenSize()), DataType.FLOAT32);
            for (int s = 0; s < t; s += Attention.CHUNK) {
                int e = Math.min(t, s + Attention.CHUNK);
                // The last layer's output is read only where a prompt ends: in this chunk from the
                // first such position on, and in a chunk where none ends not at all (its keys and
                // values still go into the cache). The other positions skip that layer's attention,
                // o_proj and MLP, a 1/layers share of the prefill's products.
                int from = e - s;
                for (int i = 0; i < b; i++) {
                    int last = promptLengths[i] - 1;
                    if (last >= s && last < e) {
                        from = Math.min(from, last - s);
                    }
                }
                final int start = s;
                final int keep = from;
                try (NDManager chunk = scope.newSubManager()) {
                    NDArray x = embed(ids.get(chunk, new NDIndex(":, {}:{}", s, e)));
                    for (int l = 0; l < layers.size() - 1; l++) {
                        DecoderLayer layer = layers.get(l);
                        x = perLayer(x, chunk, in -> layer.forward(in, start, cache, null));
                    }
                    DecoderLayer top = layers.get(layers.size() - 1);
                    if (keep == e - s) {
                        try (NDManager local = chunk.newSubManager()) {
                            x.tempAttach(local);
                            top.writeKv(x, start, cache);
                        }
                        continue;
                    }
                    x = perLayer(x, chunk, in -> top.forwardTail(in, start, cache, keep));
                    for (int i = 0; i < b; i++) {
                        int last = promptLengths[i] - 1;
                        if (last >= s && last < e) {
                            lastHidden.set(new NDIndex("{}", i), x.get(new NDIndex("{}, {}", i, last - s - keep)));
                        }
                    }
                }
            }
            cache.setLengths(promptLengths);
            for (int l = 0; l < layers.size(); l++) {
                cache.refreshLandmarks(l);
            }
            NDArray out = logits(finalNorm.forward(lastHidden));
            out.attach(ids.getManager());
            return out;
        }
    }

    /**
     * Teacher-forced continuation of a cache whose sequences all hold the same number of tokens P
     * (a prompt prefilled and copied to its samples): ids [B, T] at positions [P, P + T), in chunks
     * of {@link Attention#CHUNK}, each attending to the cache and to the chunk causally, as a
     * chunked prefill does. Returns the logits at every one of those positions, [B, T, V], attached
     * to ids' manager; the cache then holds P + T tokens per sequence.
     */
    public NDArray extend(NDArray ids, KvCache cache) {
        int b = (int) ids.getShape().get(0);
        int t = (int) ids.getShape().get(1);
        if (b != cache.batch()) {
            throw new IllegalArgumentException(b + " rows for a cache of " + cache.batch());
        }
        int start = cache.length(0);
        for (int i = 1; i < b; i++) {
            if (cache.length(i) != start) {
                throw new IllegalStateException("extend needs sequences of one length; sequence " + i + " holds "
                        + cache.length(i) + ", sequence 0 " + start);
            }
        }
        checkPositions(start + t);
        if (start + t > cache.capacity()) {
            throw new IllegalArgumentException(start + t + " tokens exceed KV cache capacity " + cache.capacity());
        }
        try (NDManager scope = manager.newSubManager()) {
            NDList chunks = new NDList();
            for (int s = 0; s < t; s += Attention.CHUNK) {
                int e = Math.min(t, s + Attention.CHUNK);
                try (NDManager chunk = scope.newSubManager()) {
                    NDArray x = embed(ids.get(chunk, new NDIndex(":, {}:{}", s, e)));
                    for (DecoderLayer layer : layers) {
                        final int at = start + s;
                        x = perLayer(x, chunk, l -> layer.forward(l, at, cache, null));
                    }
                    NDArray lg = logits(finalNorm.forward(x));
                    lg.attach(scope);
                    chunks.add(lg);
                }
            }
            int[] after = new int[b];
            java.util.Arrays.fill(after, start + t);
            cache.setLengths(after);
            for (int l = 0; l < layers.size(); l++) {
                cache.refreshLandmarks(l);
            }
            NDArray out = chunks.size() == 1 ? chunks.get(0) : NDArrays.concat(chunks, 1);
            out.attach(ids.getManager());
            return out;
        }
    }

    /**
     * One decode step: tokens[b], the next token of sequence b, at position cache.length(b).
     * Appends to the cache and returns the next-token logits [B, V], attached to {@code into}.
     */
    public NDArray decode(long[] tokens, KvCache cache, AttentionKernel kernel, NDManager into) {
        int b = cache.batch();
        int[] positions = cache.lengths();
        int[] after = new int[b];
        int span = 0;
        boolean equal = true;
        for (int i = 0; i < b; i++) {
            cache.checkRoom(i, 1);
            after[i] = positions[i] + 1;
            span = Math.max(span, after[i]);
            equal &= after[i] == after[0];
        }
        checkPositions(span);
        if (packed != null && nativePackedServes(cache)) {
            return decodeNative(tokens, cache, kernel, into, null, positions, after, span, equal);
        }
        NativeDecode.Weights nw = nativeDecodeWeights(cache);
        if (nw != null) {
            return decodeNative(tokens, cache, kernel, into, nw, positions, after, span, equal);
        }
        try (NDManager scope = manager.newSubManager()) {
            long[] pos = new long[b];
            for (int i = 0; i < b; i++) {
                pos[i] = positions[i];
            }
            NDArray positionsT = scope.create(pos);
            NDArray[] cosSin = rotary.at(positionsT);             // [B, D] each, shaped once for all layers
            cosSin[0] = cosSin[0].reshape(b, 1, 1, config.headDim());
            cosSin[1] = cosSin[1].reshape(b, 1, 1, config.headDim());
            NDArray mask = equal ? null : Masks.padding(scope, after, span);
            DecodeStep step = new DecodeStep(after, span, mask, scope);
            NDArray x = embed(scope.create(tokens).reshape(b, 1));
            for (DecoderLayer layer : layers) {
                NDArray in = x;
                x = perLayer(in, scope, l -> layer.decode(l, positionsT, positions, cosSin, cache, kernel, step));
            }
            cache.setLengths(after);
            NDArray out = logits(finalNorm.forward(x.reshape(b, config.hiddenSize())));
            out.attach(into);
            return out;
        }
    }

    /**
     * The native decoder layer's weights, or null where a step must run on libtorch ops: the
     * library is not loaded or is turned off ({@code -Dtailguard.decode.kernel=torch}), a weight
     * adapter is active, or the model or the cache is not float32 on the CPU.
     */
    private NativeDecode.Weights nativeDecodeWeights(KvCache cache) {
        if (packed != null || !NativeDecode.LIBRARY.preferred()) {
            return null;
        }
        WeightAdapter a = adapter.get();
        if (a != null && a.active()) {
            return null;
        }
        if (!NativeDecode.servesCache(cache)) {
            return null;
        }
        Object w = nativeWeights;
        if (w == null) {
            w = NativeDecode.servable(rotary.cosTable()) ? NativeDecode.Weights.of(config, parameters) : null;
            nativeWeights = w = w == null ? NO_NATIVE : w;
        }
        return w == NO_NATIVE ? null : (NativeDecode.Weights) w;
    }

    /** Whether a packed model's step runs natively: as for float32 weights (the library, no active adapter, a CPU float32 cache). */
    private boolean nativePackedServes(KvCache cache) {
        WeightAdapter a = adapter.get();
        return NativeDecode.LIBRARY.preferred() && (a == null || !a.active()) && NativeDecode.servesCache(cache);
    }

    /** Handles of a packed product's parts. */
    private long[] handles(int layer, Projection p) {
        PackedLinear[] parts = packed[layer][p.ordinal()];
        long[] h = new long[parts.length];
        for (int j = 0; j < parts.length; j++) {
            h[j] = parts[j].handle();
        }
        return h;
    }

    private NDArray param(int layer, String name) {
        return parameters.get("model.layers." + layer + "." + name);
    }

    /**
     * {@link #decode} with each layer as two native calls around the attention kernel: the hidden
     * state x [B, H] and the queries q [B, kvh, r, D] are tensors of this step that the native layer
     * updates in place; only the kernel's attention and the final norm and lm_head are tensor ops.
     */
    private NDArray decodeNative(long[] tokens, KvCache cache, AttentionKernel kernel, NDManager into,
                                 NativeDecode.Weights w, int[] positions, int[] after, int span, boolean equal) {
        int b = cache.batch();
        int h = config.hiddenSize();
        int heads = config.numHeads();
        int kvh = config.numKvHeads();
        int d = config.headDim();
        float eps = (float) config.rmsNormEps();
        float scale = (float) (1.0 / Math.sqrt(d));
        int threads = NativeLibraries.threads();
        try (NDManager scope = manager.newSubManager()) {
            NDArray mask = equal ? null : Masks.padding(scope, after, span);
            DecodeStep step = new DecodeStep(after, span, mask, scope);
            NDArray x = embed(scope.create(tokens));                            // [B, H]
            NDArray q = scope.zeros(new Shape(b, kvh, config.groupSize(), d), DataType.FLOAT32);
            java.nio.ByteBuffer xv = NativeLibraries.view(x);
            java.nio.ByteBuffer qv = NativeLibraries.view(q);
            // This step's tables: decode() has grown them to cover span (they may have grown since the last step).
            java.nio.ByteBuffer cos = NativeLibraries.view(rotary.cosTable());
            java.nio.ByteBuffer sin = NativeLibraries.view(rotary.sinTable());
            for (int l = 0; l < layers.size(); l++) {
                if (w == null) {
                    decodePackedLayer(l, xv, qv, cos, sin, positions, cache, kernel, step, scope, q, b, eps, scale, threads);
                    continue;
                }
                java.nio.ByteBuffer[] v = w.views(l);
                NativeDecode.preAttention(xv, v[0], v[1], v[2], v[3], cos, sin, positions, qv,
                        NativeLibraries.view(cache.keys(l)), NativeLibraries.view(cache.values(l)),
                        NativeLibraries.view(cache.landmarks(l)), b, h, heads, kvh, d, cache.capacity(), eps, scale, threads,
                        cache.float16());
                try (NDManager local = scope.newSubManager()) {
                    q.tempAttach(local);
                    NDArray o = kernel.decode(l, q, cache, step);                 // [B, kvh, r, D]
                    NativeDecode.postAttention(xv, NativeLibraries.view(o), v[4], v[5], v[6], v[7],
                            b, h, heads * d, config.intermediateSize(), eps, threads);
                }
            }
            cache.setLengths(after);
            NDArray out = logits(finalNorm.forward(x));
            out.attach(into);
            return out;
        }
    }

    /** One layer of {@link #decodeNative} on packed linears. */
    private void decodePackedLayer(int l, java.nio.ByteBuffer xv, java.nio.ByteBuffer qv, java.nio.ByteBuffer cos,
                                   java.nio.ByteBuffer sin, int[] positions, KvCache cache, AttentionKernel kernel,
                                   DecodeStep step, NDManager scope, NDArray q, int b, float eps, float scale, int threads) {
        int h = config.hiddenSize();
        int heads = config.numHeads();
        int d = config.headDim();
        NativeDecode.preAttentionPacked(xv, NativeLibraries.view(param(l, "input_layernorm.weight")), handles(l, Projection.QKV),
                NativeLibraries.view(param(l, "self_attn.q_norm.weight")), NativeLibraries.view(param(l, "self_attn.k_norm.weight")),
                cos, sin, positions, qv, NativeLibraries.view(cache.keys(l)), NativeLibraries.view(cache.values(l)),
                NativeLibraries.view(cache.landmarks(l)), b, h, heads, config.numKvHeads(), d, cache.capacity(), eps, scale, threads,
                cache.float16());
        try (NDManager local = scope.newSubManager()) {
            q.tempAttach(local);
            NDArray o = kernel.decode(l, q, cache, step);                         // [B, kvh, r, D]
            NativeDecode.postAttentionPacked(xv, NativeLibraries.view(o), handles(l, Projection.O),
                    NativeLibraries.view(param(l, "post_attention_layernorm.weight")), handles(l, Projection.GATE_UP),
                    handles(l, Projection.DOWN), b, h, heads * d, config.intermediateSize(), eps, threads);
        }
    }

    /**
     * Runs one layer with its temporaries in a manager of their own, freed as soon as the layer
     * returns: memory is reused layer after layer instead of piling up until the step ends. The
     * output moves to {@code keep}; the input returns there too.
     */
    private static NDArray perLayer(NDArray x, NDManager keep, java.util.function.UnaryOperator<NDArray> layer) {
        try (NDManager local = keep.newSubManager()) {
            x.tempAttach(local);
            NDArray y = layer.apply(x);
            y.attach(keep);
            return y;
        }
    }

    private NDArray embed(NDArray ids) {
        return ids.getNDArrayInternal().embedding(ids, embedding, SparseFormat.DENSE).singletonOrThrow();
    }

    /**
     * The embedding of a training forward: while a tape records (and the native vocabulary kernels
     * serve the weight), a leaf of the tape's whose gradient its walk back scatters into the
     * embedding's gradient, instead of autograd's dense V x H embedding backward. The tape owns that
     * leaf ({@link #keep} leaves it there).
     */
    private NDArray embed(NDArray ids, TrainingTape tape) {
        if (VocabularyProjection.embedServes(tape, embedding)) {
            return VocabularyProjection.embed(tape, ids, embedding, this::embed);
        }
        return embed(ids);
    }

    /** Attaches embeddings to the pass's scope, except a tape's leaves, which live as long as the tape. */
    private static void keep(NDManager scope, TrainingTape tape, NDArray... xs) {
        for (NDArray x : xs) {
            if (tape == null || x.getManager() != tape.manager()) {
                x.attach(scope);
            }
        }
    }

    /** Refuses sequences beyond max_position_embeddings and grows the rotary tables to cover t positions. */
    private void checkPositions(int t) {
        rotary.ensure(t);
    }

    @Override
    public void close() {
        manager.close();
        if (packed != null) {
            for (PackedLinear[][] layer : packed) {
                for (PackedLinear[] parts : layer) {
                    for (PackedLinear p : parts) {
                        p.close();
                    }
                }
            }
        }
    }
}
