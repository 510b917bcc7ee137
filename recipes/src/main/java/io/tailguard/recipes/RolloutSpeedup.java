package io.tailguard.recipes;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.TaskSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A run's measured rollout speedup: the decode wall time of one rollout batch (a lease's prompts ×
 * G, at contexts spread evenly over [contextMin, contextMax], from the run's speedup prompt stream,
 * sampled at temperature 1 with one seed), dense over each schedule, with one policy on the CPU.
 * Rounds alternate dense and the schedules, so load on a shared machine hits them alike; each takes
 * its best of five rounds after a warm-up round.
 */
public final class RolloutSpeedup {
    static final int ROUNDS = 6;
    /** One sampling seed for every round and mode, so that each decodes the same tokens' worth of work. */
    static final long SAMPLING_SEED = 5;

    private RolloutSpeedup() {
    }

    /** Dense decode time over each schedule's, in the schedules' order. */
    public static double[] measure(Path policy, TaskSpec task, int contextMin, int contextMax, int promptsPerLease,
                                   int groupSize, long runSeed, List<Schedule> schedules) {
        Tokenizer tok = Tokenizers.fromCheckpoint(policy);
        int eos = TaskFormat.requireEos(tok);
        List<int[]> prompts = new ArrayList<>();
        int maxNew = 1;
        for (int i = 0; i < promptsPerLease; i++) {
            int ctx = contextMin + (contextMax - contextMin) * i / Math.max(1, promptsPerLease - 1);
            Task t = task.at(ctx);
            Prompt p = io.tailguard.rollout.tasks.PromptOrder.of(t, PromptStreams.speedup(runSeed)).prompt(i);
            maxNew = Math.max(maxNew, TaskFormat.maxNewTokens(t, p, tok, 64));
            for (int g = 0; g < groupSize; g++) {
                prompts.add(TaskFormat.promptIds(tok, t, p));
            }
        }
        try (Qwen3Model model = ModelLoader.load(policy, Devices.parse("cpu"))) {
            GenerationRequest req = new GenerationRequest(prompts, maxNew, new SamplingParams(1.0, 1.0, 0, SAMPLING_SEED), Set.of(eos), 0);
            Generator dense = new Generator(model);
            List<Generator> sparse = new ArrayList<>();
            for (Schedule sc : schedules) {
                sparse.add(sc.isDense() ? new Generator(model) : new Generator(model, BlockTopKAttention.of(sc)));
            }
            double d = Double.MAX_VALUE;
            double[] sp = new double[schedules.size()];
            Arrays.fill(sp, Double.MAX_VALUE);
            for (int r = 0; r < ROUNDS; r++) {
                double dr = dense.generate(req).decodeSeconds();
                d = r == 0 ? d : Math.min(d, dr);
                for (int i = 0; i < sp.length; i++) {
                    double x = sparse.get(i).generate(req).decodeSeconds();
                    sp[i] = r == 0 ? sp[i] : Math.min(sp[i], x);
                }
            }
            double[] out = new double[sp.length];
            for (int i = 0; i < sp.length; i++) {
                out[i] = d / sp[i];
            }
            return out;
        }
    }
}
