package io.tailguard.rollout.generation;

import java.util.List;
import java.util.Set;

/**
 * A batch to generate: prompts (token ids, each non-empty), at most maxNewTokens per sequence,
 * stopping a sequence at any of stopTokens (the stop token is kept in the output), and with
 * topLogprobs > 0 the top alternatives of every generated position.
 */
public record GenerationRequest(List<int[]> prompts, int maxNewTokens, SamplingParams sampling,
                                Set<Integer> stopTokens, int topLogprobs) {
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
