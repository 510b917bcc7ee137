package io.tailguard.rollout.generation;

/**
 * How to pick each next token. temperature 0 is greedy; otherwise sample from softmax(logits / T)
 * restricted to the topK most likely tokens (0: no limit) and then to the smallest set whose
 * probability reaches topP (1: no limit). The seed makes sampling reproducible.
 */
public record SamplingParams(double temperature, double topP, int topK, long seed) {
    public SamplingParams {
        if (!(temperature >= 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        }
    }

    public static SamplingParams greedy() {
        return new SamplingParams(0, 1, 0, 0);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }
}
