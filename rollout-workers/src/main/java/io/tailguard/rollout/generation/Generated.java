package io.tailguard.rollout.generation;

/**
 * One generated sequence. logprobs[t] is the log-probability of outputIds[t] under the sampling
 * distribution before truncation, softmax(logits / T) (T = 1 when greedy); with top logprobs
 * requested, topIds[t] and topLogprobs[t] hold the most likely tokens of that same distribution.
 * finishReason is "stop" (a stop token was produced) or "length". distributions holds the
 * temperature-1 distributions when the request captured them, else null.
 */
public record Generated(int[] promptIds, int[] outputIds, float[] logprobs, int[][] topIds,
                        float[][] topLogprobs, String finishReason, TokenDistributions distributions) {}
