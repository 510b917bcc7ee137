package io.tailguard.model;

/**
 * The architecture of a Qwen3 decoder, with the Hugging Face config.json key of each field.
 *
 * <p>Validation lives here so that every path that builds a config (a preset, config.json, a test)
 * fails the same way, naming the config.json key that is wrong.
 */
public record ModelConfig(
        int vocabSize,              // vocab_size
        int hiddenSize,             // hidden_size
        int intermediateSize,       // intermediate_size
        int numLayers,              // num_hidden_layers
        int numHeads,               // num_attention_heads
        int numKvHeads,             // num_key_value_heads
        int headDim,                // head_dim
        double rmsNormEps,          // rms_norm_eps
        double ropeTheta,           // rope_theta
        int maxPositionEmbeddings,  // max_position_embeddings
        boolean tieWordEmbeddings,  // tie_word_embeddings
        int eosTokenId,             // eos_token_id (-1: none)
        Yarn yarn) {                // rope_scaling / rope_parameters of rope_type "yarn"; null: plain RoPE

    /** A config with plain RoPE (no scaling). */
    public ModelConfig(int vocabSize, int hiddenSize, int intermediateSize, int numLayers, int numHeads, int numKvHeads,
                       int headDim, double rmsNormEps, double ropeTheta, int maxPositionEmbeddings,
                       boolean tieWordEmbeddings, int eosTokenId) {
        this(vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, rmsNormEps, ropeTheta,
                maxPositionEmbeddings, tieWordEmbeddings, eosTokenId, null);
    }

    /**
     * YaRN RoPE scaling (Peng et al., 2023) as transformers computes it: frequencies that turn
     * fewer than beta_slow times over the original context are divided by factor, those that turn
     * more than beta_fast times are kept, with a linear ramp between (over whole dimensions when
     * truncate), and cos and sin are multiplied by attentionFactor (already resolved from factor,
     * mscale and mscale_all_dim when the config does not state it).
     */
    public record Yarn(double factor, int originalMaxPositionEmbeddings, double attentionFactor, double betaFast,
                       double betaSlow, boolean truncate) {
        public Yarn {
            if (!(factor >= 1) || !Double.isFinite(factor)) {
                throw new IllegalArgumentException("rope_scaling.factor must be a number >= 1, got " + factor);
            }
            if (originalMaxPositionEmbeddings <= 0) {
                throw new IllegalArgumentException("rope_scaling.original_max_position_embeddings must be a positive integer, got "
                        + originalMaxPositionEmbeddings);
            }
            if (!(attentionFactor > 0) || !Double.isFinite(attentionFactor)) {
                throw new IllegalArgumentException("rope_scaling.attention_factor must be a positive number, got " + attentionFactor);
            }
            if (!(betaFast > 0) || !(betaSlow > 0) || !Double.isFinite(betaFast) || !Double.isFinite(betaSlow)) {
                throw new IllegalArgumentException("rope_scaling.beta_fast and beta_slow must be positive numbers, got "
                        + betaFast + " and " + betaSlow);
            }
        }

        /** transformers' get_mscale: 0.1 · mscale · ln(scale) + 1, or 1 for scale ≤ 1. */
        public static double mscale(double scale, double mscale) {
            return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
        }
    }

    public ModelConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + numHeads
                    + ") must be a multiple of num_key_value_heads (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        }
        if (!(rmsNormEps > 0) || !Double.isFinite(rmsNormEps)) {
            throw new IllegalArgumentException("rms_norm_eps must be a positive number, got " + rmsNormEps);
        }
        if (!(ropeTheta > 1) || !Double.isFinite(ropeTheta)) {
            throw new IllegalArgumentException("rope_theta must be a number > 1, got " + ropeTheta);
        }
        if (eosTokenId < -1 || eosTokenId >= vocabSize) {
            throw new IllegalArgumentException("eos_token_id must be in [0, vocab_size) or absent, got " + eosTokenId);
        }
    }

    /**
     * The rotary inverse frequencies, one per pair of dimensions [head_dim / 2]: theta^(-2i/D), or
     * YaRN's blend of those and the same divided by factor.
     */
    public double[] ropeInverseFrequencies() {
        int half = headDim / 2;
        double[] f = new double[half];
        if (yarn == null) {
            for (int i = 0; i < half; i++) {
                f[i] = Math.pow(ropeTheta, -2.0 * i / headDim);
            }
            return f;
        }
        double low = correctionDim(yarn.betaFast());
        double high = correctionDim(yarn.betaSlow());
        if (yarn.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, headDim - 1);
        if (low == high) {
            high += 0.001;  // as transformers: no division by zero
        }
        for (int i = 0; i < half; i++) {
            double extrapolation = 1.0 / Math.pow(ropeTheta, 2.0 * i / headDim);
            double interpolation = extrapolation / yarn.factor();
            double ramp = Math.min(1.0, Math.max(0.0, (i - low) / (high - low)));
            double keep = 1.0 - ramp;  // the share of the unscaled frequency
            f[i] = interpolation * (1.0 - keep) + extrapolation * keep;
        }
        return f;
    }

    /** The dimension whose frequency turns {@code rotations} times over the original context. */
    private double correctionDim(double rotations) {
        return headDim * Math.log(yarn.originalMaxPositionEmbeddings() / (rotations * 2 * Math.PI)) / (2 * Math.log(ropeTheta));
    }

    /** What cos and sin are multiplied by: YaRN's attention factor, else 1. */
    public double ropeAttentionScaling() {
        return yarn == null ? 1.0 : yarn.attentionFactor();
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(key + " must be a positive integer, got " + v);
        }
    }

    /** Query heads per KV head (the GQA group size r). */
    public int groupSize() {
        return numHeads / numKvHeads;
    }

    /** Parameters, counting a tied embedding once. */
    public long parameterCount() {
        long h = hiddenSize;
        long attn = h * numHeads * headDim + 2 * h * numKvHeads * headDim + (long) numHeads * headDim * h
                + 2L * headDim;
        long mlp = 3 * h * intermediateSize;
        long perLayer = attn + mlp + 2 * h;
        long embed = (long) vocabSize * h;
        return numLayers * perLayer + embed + (tieWordEmbeddings ? 0 : embed) + h;
    }

    /**
     * Named presets. {@code tiny} (about 1M parameters) is the short-context warm start,
     * {@code tiny6} (tiny's width, six layers) the embedded default: with two layers kept dense, four
     * of six decode sparsely, where tiny would leave half its layers dense. {@code small} is the
     * benchmark model (about 36M parameters). RoPE base 1e6, as Qwen3, which keeps 16K positions apart.
     */
    public static ModelConfig preset(String name, int vocabSize, int eosTokenId) {
        return switch (name) {
            case "tiny" -> new ModelConfig(vocabSize, 128, 384, 4, 4, 2, 32, 1e-6, 1_000_000.0, 32_768, true, eosTokenId);
            case "tiny6" -> new ModelConfig(vocabSize, 128, 384, 6, 4, 2, 32, 1e-6, 1_000_000.0, 32_768, true, eosTokenId);
            case "small" -> new ModelConfig(vocabSize, 512, 1536, 12, 8, 2, 64, 1e-6, 1_000_000.0, 32_768, true, eosTokenId);
            default -> throw new IllegalArgumentException("unknown preset '" + name + "' (known: tiny, tiny6, small)");
        };
    }

    public static java.util.List<String> presetNames() {
        return java.util.List.of("tiny", "tiny6", "small");
    }
}
