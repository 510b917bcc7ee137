package io.tailguard.rollout.generation;

import java.util.List;
import java.util.Set;

/**
 * A batch to generate: prompts (token ids, each non-empty), at most maxNewTokens per sequence,
 * stopping a sequence at any of stopTokens (the stop token is kept in the output), and with
 * topLogprobs > 0 the top alternatives of every generated position. With captureTopK ≥ 0 each
 * sequence also records its temperature-1 distribution at every position for the mismatch probe:
 * all of it when captureTopK is 0 or at least the vocabulary size, else the top captureTopK.
 */
public record GenerationRequest(List<int[]> prompts, int maxNewTokens, SamplingParams sampling,
                                Set<Integer> stopTokens, int topLogprobs, int captureTopK) {
    /** No capture of distributions. */
    public static final int NO_CAPTURE = -1;

    public GenerationRequest(List<int[]> prompts, int maxNewTokens, SamplingParams sampling,
                             Set<Integer> stopTokens, int topLogprobs) {
        this(prompts, maxNewTokens, sampling, stopTokens, topLogprobs, NO_CAPTURE);
    }

    public GenerationRequest {
        prompts = List.copyOf(prompts);
        stopTokens = Set.copyOf(stopTokens);
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts");
        }
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i).length == 0) {
                throw new IllegalArgumentException("prompt " + i + " is empty");
            }
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max new tokens must be >= 1, got " + maxNewTokens);
        }
        if (topLogprobs < 0) {
            throw new IllegalArgumentException("top logprobs must be >= 0, got " + topLogprobs);
        }
    }
}
