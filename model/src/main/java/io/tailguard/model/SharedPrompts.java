package io.tailguard.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The distinct prompts of a batch and which one each sequence has: the samples of a GRPO group
 * share their prompt, and the rollout's prefill, the dense scoring and the learner's forward do its
 * work once for all of them. Distinct prompts are numbered in order of first use, so a batch
 * without repeats has {@code rowOf[i] == i}.
 */
public record SharedPrompts(List<int[]> distinct, int[] rowOf) {

    public static SharedPrompts of(List<int[]> prompts) {
        List<int[]> distinct = new ArrayList<>();
        int[] rowOf = new int[prompts.size()];
        for (int i = 0; i < prompts.size(); i++) {
            int[] p = prompts.get(i);
            int r = 0;
            while (r < distinct.size() && !Arrays.equals(distinct.get(r), p)) {
                r++;
            }
            if (r == distinct.size()) {
                distinct.add(p);
            }
            rowOf[i] = r;
        }
        return new SharedPrompts(distinct, rowOf);
    }

    /** Whether some prompt occurs more than once. */
    public boolean repeats() {
        return distinct.size() < rowOf.length;
    }

    /** The sequences whose prompt is distinct prompt r, in batch order. */
    public List<Integer> sequencesOf(int r) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < rowOf.length; i++) {
            if (rowOf[i] == r) {
                out.add(i);
            }
        }
        return out;
    }
}
