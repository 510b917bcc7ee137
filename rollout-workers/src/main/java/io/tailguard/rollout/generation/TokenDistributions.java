package io.tailguard.rollout.generation;

/**
 * The generator's next-token distribution at temperature 1 at every generated position, as the
 * mismatch probe needs it: full log-probs over the vocabulary when {@code ids} is null (small
 * vocabularies), else the top-K ids and their log-probs, descending.
 */
public record TokenDistributions(int[][] ids, float[][] logprobs) {
    public boolean isFull() {
        return ids == null;
    }
}
