/*
 * The learner step of the main job's shape, timed: GrpoLearner.step (the GRPO + TIS update the
 * Learner actor runs) on groups of samples that share their prompt, with the quickstart's sizes by
 * default (config/quickstart.conf: the embedded default, 4 groups of 8 per step, micro-batches of
 * 16, prompts of 896-1024 tokens, completions of the span's 256 symbols, "]" and an end token). Token ids and
 * log-probs are random (a step's cost does not depend on them); rewards differ within every group,
 * so no group is dropped. Run through bench/learner-step.sh, which builds the project first.
 * Prints one JSON line: the seconds of each timed step, their median, and trained (completion)
 * tokens per second at the median.
 */
import ai.djl.Device;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.GrpoObjective;
import io.tailguard.learner.LrSchedule;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

public class LearnerStep {
    public static void main(String[] args) {
        String checkpoint = "default";
        int steps = 4, groups = 4, groupSize = 8, microBatch = 16, promptMin = 896, promptMax = 1024, completion = 258;
        long seed = 1;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                usage("missing value after " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--checkpoint" -> checkpoint = v;
                case "--steps" -> steps = positive(a, v);
                case "--groups" -> groups = positive(a, v);
                case "--group-size" -> groupSize = positive(a, v);
                case "--micro-batch" -> microBatch = positive(a, v);
                case "--prompt-min" -> promptMin = positive(a, v);
                case "--prompt-max" -> promptMax = positive(a, v);
                case "--completion" -> completion = positive(a, v);
                case "--seed" -> seed = Long.parseLong(v);
                default -> usage("unknown option " + a);
            }
        }
        if (promptMax < promptMin || groupSize < 2) {
            usage("--prompt-max must be >= --prompt-min and --group-size >= 2");
        }
        Path dir = io.tailguard.actors.cli.Checkpoints.resolve(Path.of(checkpoint));
        try (Qwen3Model model = ModelLoader.load(dir, Device.cpu())) {
            int vocab = model.config().vocabSize();
            SplittableRandom r = new SplittableRandom(seed);
            List<GrpoLearner.Sample> samples = new ArrayList<>();
            for (int g = 0; g < groups; g++) {
                int[] prompt = r.ints(promptMin + r.nextInt(promptMax - promptMin + 1), 0, vocab).toArray();
                for (int s = 0; s < groupSize; s++) {
                    int[] out = r.ints(completion, 0, vocab).toArray();
                    float[] behaviour = new float[completion];
                    for (int j = 0; j < completion; j++) {
                        behaviour[j] = (float) (-0.2 - r.nextDouble());
                    }
                    samples.add(new GrpoLearner.Sample(prompt, out, behaviour, s % 2 == 0 ? r.nextDouble() : 1 + r.nextDouble()));
                }
            }
            double[] seconds = new double[steps];
            try (GrpoLearner learner = new GrpoLearner(model, groupSize, microBatch, GrpoObjective.Options.defaults(),
                    new LrSchedule(1e-4, 0, steps + 2, 1.0), AdamW.Options.defaults())) {
                learner.step(samples); // warm-up
                for (int s = 0; s < steps; s++) {
                    long t0 = System.nanoTime();
                    learner.step(samples);
                    seconds[s] = (System.nanoTime() - t0) / 1e9;
                }
            }
            double[] sorted = seconds.clone();
            Arrays.sort(sorted);
            double median = steps % 2 == 1 ? sorted[steps / 2] : (sorted[steps / 2 - 1] + sorted[steps / 2]) / 2;
            long tokens = (long) groups * groupSize * completion;
            StringBuilder each = new StringBuilder();
            for (double x : seconds) {
                each.append(each.length() == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.3f", x));
            }
            System.out.printf(Locale.ROOT, "{\"median_step_seconds\":%.3f,\"step_seconds\":[%s],\"trained_tokens_per_s\":%.1f,"
                            + "\"groups\":%d,\"group_size\":%d,\"micro_batch\":%d,\"prompt_min\":%d,\"prompt_max\":%d,\"completion\":%d}%n",
                    median, each, tokens / median, groups, groupSize, microBatch, promptMin, promptMax, completion);
        }
        System.exit(0); // libtorch's helper threads would keep the JVM alive
    }

    private static int positive(String flag, String v) {
        try {
            int n = Integer.parseInt(v);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // falls through to the message
        }
        usage(flag + ": expected a positive integer, got '" + v + "'");
        return 0;
    }

    private static void usage(String why) {
        System.err.println("learner-step: " + why);
        System.exit(2);
    }
}
