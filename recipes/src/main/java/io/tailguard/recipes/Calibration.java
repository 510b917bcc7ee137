package io.tailguard.recipes;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.io.AtomicFiles;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.eval.TailMeasurement;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Budgets;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.TaskSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * The published offline calibration (docs/algorithms.md, "Schedules and offline calibration"):
 * measure the α tail under each candidate budget, then pick per position bin the cheapest budget
 * whose tail meets τ. {@code calibrate} runs it on the prompts its options name; {@code train} with
 * {@code tailguard.controller.schedule = calibrate} runs {@link #forRun} on the warm start.
 *
 * <p>Bad input is an IllegalArgumentException naming the parameter (tau, candidates, bin-width,
 * groups); the command line maps those to its own flags.
 */
public final class Calibration {
    /** Calibration prompts per context length when a run calibrates at its start. */
    static final int RUN_PROMPTS = 24;
    private Calibration() {
    }

    /** The calibration prompts of one context length (or of a dataset); {@code label} names them in progress. */
    public record Group(String label, Task task, List<Prompt> prompts) {}

    /** Where a calibration reports as it goes; the command line draws progress bars and prints the lines. */
    public interface Listener {
        /** A measurement (one candidate budget on one group) starts; its progress goes to what this returns. */
        Evaluator.Progress started(String label);

        /** That measurement ended, normally or not. */
        void ended(String label);

        /**
         * One line per candidate budget, once measured: its p5 α by bin; and a run's calibration's
         * own lines ({@link #atRunStart}).
         */
        void line(String text);

        /** No progress; lines are dropped. */
        Listener SILENT = linesOnly(text -> { });

        /** No progress; each line goes to {@code lines}. */
        static Listener linesOnly(Consumer<String> lines) {
            return new Listener() {
                @Override
                public Evaluator.Progress started(String label) {
                    return Evaluator.Progress.NONE;
                }

                @Override
                public void ended(String label) {
                }

                @Override
                public void line(String text) {
                    lines.accept(text);
                }
            };
        }
    }

    /** A calibrated schedule, with the candidates (ascending) and each one's merged tails it was chosen from. */
    public record Result(Schedule schedule, int[] candidates, List<TailStats> tables) {}

    /**
     * Measures every candidate and chooses the schedule ({@link #measure}, {@link #choose}).
     *
     * @param candidates  budgets to measure under, ascending and distinct, each obeying {@link Budgets}
     * @param tau         the tail threshold, in (0, 1]
     * @param denseLayers the layers that stay dense, while measuring and in the schedule
     * @param adapter     a LoRA only the sparse actor uses, or null
     */
    public static Result calibrate(Qwen3Model model, Tokenizer tok, List<Group> groups, int[] candidates, double tau,
                                   int binWidth, Set<Integer> denseLayers, long seed, int batch, int maxNew,
                                   LoraAdapter adapter, Listener listener) {
        return calibrate(model, tok, groups, candidates, tau, 0, binWidth, denseLayers, seed, batch, maxNew, adapter, listener);
    }

    /**
     * As above, with the sequence guard at {@code sequenceTau} (0: off): the p5 choice is then raised
     * until the measured sequence α holds ({@link #choose(int[], List, double, double, int)}).
     */
    public static Result calibrate(Qwen3Model model, Tokenizer tok, List<Group> groups, int[] candidates, double tau,
                                   double sequenceTau, int binWidth, Set<Integer> denseLayers, long seed, int batch, int maxNew,
                                   LoraAdapter adapter, Listener listener) {
        if (!(sequenceTau >= 0 && sequenceTau < 1)) {
            throw new IllegalArgumentException("sequence-tau: must be 0 (off) or in (0, 1), got " + sequenceTau);
        }
        if (!(tau > 0 && tau <= 1)) {
            throw new IllegalArgumentException("tau: must be in (0, 1], got " + tau);
        }
        if (!Budgets.validBinWidth(binWidth)) {
            throw new IllegalArgumentException("bin-width: must be " + Budgets.BIN_WIDTH_RULE + ", got " + binWidth);
        }
        if (candidates.length == 0) {
            throw new IllegalArgumentException("candidates: at least one budget is needed");
        }
        for (int j = 0; j < candidates.length; j++) {
            Budgets.check("candidates", candidates[j]);
            if (j > 0 && candidates[j] <= candidates[j - 1]) {
                throw new IllegalArgumentException("candidates: must be ascending and distinct, got " + candidates[j]
                        + " after " + candidates[j - 1]);
            }
        }
        if (groups.isEmpty()) {
            throw new IllegalArgumentException("groups: at least one group of prompts is needed");
        }
        List<TailStats> tables = measure(model, tok, groups, candidates, binWidth, denseLayers, seed, batch, maxNew,
                adapter, listener);
        Schedule schedule = Schedule.ofBins(binWidth, choose(candidates, tables, tau, sequenceTau, binWidth))
                .withDenseLayers(denseLayers);
        return new Result(schedule, candidates.clone(), tables);
    }

    /**
     * The calibration measurements: for each candidate budget, the α tails of the groups' prompts
     * sampled (temperature 1, the same seed under every budget) under that fixed budget, merged.
     */
    static List<TailStats> measure(Qwen3Model model, Tokenizer tok, List<Group> groups, int[] candidates, int binWidth,
                                   Set<Integer> denseLayers, long seed, int batch, int maxNew, LoraAdapter adapter,
                                   Listener listener) {
        List<TailStats> tables = new ArrayList<>();
        for (int b : candidates) {
            Schedule fixed = Schedule.fixed(b).withDenseLayers(denseLayers);
            TailStats merged = new TailStats(binWidth);
            for (Group g : groups) {
                String label = "budget " + b + ", " + g.label();
                Evaluator.Progress progress = listener.started(label);
                try {
                    merged.merge(TailMeasurement.measure(model, tok, g.task(), g.prompts(), fixed, binWidth,
                            1.0, seed, batch, maxNew, progress, adapter).tails());
                } finally {
                    listener.ended(label);
                }
            }
            tables.add(merged);
            StringBuilder line = new StringBuilder("calibration: budget " + b + ": p5 by bin");
            for (TailStats.BinSummary s : merged.summary()) {
                line.append(String.format(Locale.ROOT, " [%d]=%.4f", s.start(), s.alphaP5()));
            }
            line.append(String.format(Locale.ROOT, "; sequence α %.4f", merged.sequenceAlpha()));
            listener.line(line.toString());
        }
        return tables;
    }

    /**
     * Per bin, the cheapest candidate (ascending) whose tail p5 ≥ τ and every larger candidate's too;
     * max(MIN_BUDGET, bin end) (dense within the bin) when the largest measured one fails; then
     * {@link Budgets#makeNonDecreasing} with the bins no candidate's tokens reached as its unreached
     * bins: such a bin takes the previous bin's budget (leading ones the first reached bin's), and
     * budgets never decrease (a running max).
     *
     * <p>Why "every larger one too": α is measured on the sparse actor's own trajectories, and a
     * budget too small to follow the task can derail them early, after which dense and sparse agree
     * on the derailed text: its later bins then read a high p5 that no larger budget below the one
     * that holds reproduces (seen on copy with one dense layer: p5 0.98 at budget 48, 0.001 at 64 to
     * 112, 0.14 at 176). A high tail under a budget that a larger budget fails is that, not a held tail.
     */
    public static int[] choose(int[] ascendingBudgets, List<TailStats> tables, double tau, int binWidth) {
        return choose(ascendingBudgets, tables, tau, 0, binWidth);
    }

    /**
     * The choice above, then, with {@code sequenceTau} above 0, the sequence guard's rule
     * (docs/algorithms.md, "The sequence α"): while the sequence α the tables predict for the schedule
     * is below sequence-τ, the bin holding the largest share of its disagreements goes to the next larger
     * candidate (after the largest, its end: dense within the bin), and budgets are made
     * non-decreasing again. A bin's share at a budget is read from the table of the largest candidate
     * at most that budget (a larger budget costs at most as much α), and is 0 dense within the bin.
     */
    public static int[] choose(int[] ascendingBudgets, List<TailStats> tables, double tau, double sequenceTau, int binWidth) {
        int bins = 0;
        for (TailStats t : tables) {
            bins = Math.max(bins, t.binCount());
        }
        int[] pick = new int[bins];
        boolean[] reached = new boolean[bins];
        boolean any = false;
        for (int i = 0; i < bins; i++) {
            pick[i] = Budgets.NONE;
            // from the largest candidate down, as long as each measured one holds τ
            for (int j = ascendingBudgets.length - 1; j >= 0; j--) {
                TailStats t = tables.get(j);
                if (t.count(i) > 0) {
                    reached[i] = true;
                    if (t.p5(i) < tau) {
                        break;
                    }
                    pick[i] = ascendingBudgets[j];
                }
            }
            if (reached[i] && pick[i] == Budgets.NONE) {
                pick[i] = (int) Math.max(Budgets.MIN_BUDGET, Math.min((long) (i + 1) * binWidth, Budgets.LARGEST));
            }
            any |= reached[i];
        }
        if (!any) {
            throw new IllegalArgumentException("calibration produced no probed tokens; nothing to calibrate on");
        }
        int[] raw = pick;   // unreached bins NONE: each repair gives them their neighbours' budgets afresh
        pick = Budgets.makeNonDecreasing(raw, reached);
        while (sequenceTau > 0) {
            double total = 0;
            int worst = -1;
            double worstShare = 0;
            for (int i = 0; i < bins; i++) {
                double share = share(ascendingBudgets, tables, i, pick[i], binWidth);
                total += share;
                if (share > worstShare) {
                    worst = i;
                    worstShare = share;
                }
            }
            if (worst < 0 || Math.exp(-total) >= sequenceTau) {
                break;
            }
            int next = (int) Math.max(Budgets.MIN_BUDGET, Math.min((long) (worst + 1) * binWidth, Budgets.LARGEST));
            for (int b : ascendingBudgets) {
                if (b > pick[worst]) {
                    next = Math.min(next, b);
                    break;
                }
            }
            raw[worst] = next;   // a bin with a share has tokens: it is reached
            pick = Budgets.makeNonDecreasing(raw, reached);
        }
        return pick;
    }

    /** Bin i's share of the disagreements per trajectory at this budget (see {@link #choose(int[], List, double, double, int)}); 0 where unknown. */
    private static double share(int[] ascendingBudgets, List<TailStats> tables, int bin, int budget, int binWidth) {
        if ((long) budget >= (long) (bin + 1) * binWidth) {
            return 0;
        }
        for (int j = ascendingBudgets.length - 1; j >= 0; j--) {
            if (ascendingBudgets[j] <= budget) {
                double s = tables.get(j).sequenceDisagreements(bin);
                return Double.isNaN(s) ? 0 : s;
            }
        }
        return 0;
    }

    /**
     * The calibration prompts of a built-in task: {@code n} prompts of the task at each context
     * length ({@code taskAt}), drawn with {@code seed}, one group per length, labelled "context C".
     */
    public static List<Group> groups(IntFunction<Task> taskAt, int[] contexts, int n, long seed) {
        List<Group> groups = new ArrayList<>();
        for (int ctx : contexts) {
            Task t = taskAt.apply(ctx);
            groups.add(new Group("context " + ctx, t, Evaluator.prompts(t, n, seed)));
        }
        return groups;
    }

    /** The calibration prompts of a dataset task: its first {@code n} records, one group labelled "dataset". */
    public static List<Group> datasetGroups(Task dataset, int n, long seed) {
        return List.of(new Group("dataset", dataset, Evaluator.prompts(dataset, n, seed)));
    }

    /**
     * The candidates when none are given: {@link #defaultBudgets} up to the largest of the
     * calibration {@code contexts}, or, for a dataset's groups (contexts null), up to their longest
     * prompt in tokens.
     */
    public static int[] defaultCandidates(Tokenizer tok, List<Group> groups, int[] contexts) {
        return defaultBudgets(contexts == null ? largestPrompt(tok, groups) : Arrays.stream(contexts).max().orElse(0));
    }

    /** 256, 512, ... up to the largest context (at least one candidate). */
    public static int[] defaultBudgets(int largestContext) {
        int count = Math.max(1, largestContext / 256);
        int[] b = new int[count];
        for (int i = 0; i < count; i++) {
            b[i] = 256 * (i + 1);
        }
        return b;
    }

    /** The longest prompt of the groups, in tokens. */
    public static int largestPrompt(Tokenizer tok, List<Group> groups) {
        int largest = 0;
        for (Group g : groups) {
            for (Prompt p : g.prompts()) {
                largest = Math.max(largest, TaskFormat.promptIds(tok, g.task(), p).length);
            }
        }
        return largest;
    }

    /**
     * The predicted speedup of a calibrated schedule: {@link #predictedSpeedup(CostModel, Tokenizer,
     * Group, int, Schedule)} on the last group (the largest context) with the model's cost model and
     * the machine constants of `bench machine` (its file, else the defaults).
     */
    public static double predictedSpeedup(ModelConfig config, Tokenizer tok, List<Group> groups, int maxNew,
                                          Schedule schedule) {
        CostModel cost = new CostModel(config, CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()));
        return predictedSpeedup(cost, tok, groups.get(groups.size() - 1), maxNew, schedule);
    }

    /**
     * The cost model's dense/schedule cost ratio of generating, at batch 1, one completion after a
     * prompt of the group: prompt = the mean prompt length in tokens of its prompts, new tokens =
     * their mean generation budget (solution + 25% + 8, or maxNew), prefill included on both sides.
     */
    public static double predictedSpeedup(CostModel cost, Tokenizer tok, Group group, int maxNew, Schedule schedule) {
        double promptLength = 0;
        double newTokens = 0;
        for (Prompt p : group.prompts()) {
            promptLength += TaskFormat.promptIds(tok, group.task(), p).length;
            newTokens += TaskFormat.maxNewTokens(group.task(), p, tok, maxNew);
        }
        promptLength /= group.prompts().size();
        newTokens /= group.prompts().size();
        return cost.predictedSpeedup(schedule, (int) Math.round(promptLength), (int) Math.ceil(newTokens));
    }

    // ---------------------------------------------------------------- a run's calibration at its start

    /**
     * The candidates of a run's calibration: the controller's own rungs for the bin that ends at
     * context-max rounded up to the page (min-budget × ladder-ratio^k, page-rounded, under it, and
     * the top rung: context-max itself, dense).
     */
    static int[] runCandidates(BudgetController.Settings controller, int contextMax) {
        return BudgetController.ladder(controller, io.tailguard.model.KvCache.ceilToPage(contextMax));
    }

    /**
     * The calibration a run does at its start, on the warm start at {@code checkpoint} (on the CPU):
     * {@link #RUN_PROMPTS} prompts of the task at context-min and at context-max, from their own
     * prompt stream ({@link PromptStreams#calibration}), 8 sequences per batch and 64 new
     * tokens for tasks without solutions; candidates from {@link #runCandidates}; τ and bin width
     * are the controller's; {@code denseLayers} stay dense.
     */
    public static Result forRun(Path checkpoint, TaskSpec task, int contextMin, int contextMax, long runSeed,
                                BudgetController.Settings controller, Set<Integer> denseLayers, Listener listener) {
        int[] candidates = runCandidates(controller, contextMax);
        long seed = PromptStreams.calibration(runSeed);
        Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
        int[] contexts = java.util.stream.IntStream.of(contextMin, contextMax).sorted().distinct().toArray();
        // a dataset's records keep their lengths: one group of its first records, not the same ones per context
        List<Group> groups = task.isDataset() ? datasetGroups(task.at(contextMax), RUN_PROMPTS, seed)
                : groups(task::at, contexts, RUN_PROMPTS, seed);
        try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse("cpu"))) {
            return calibrate(model, tok, groups, candidates, controller.tau(), controller.sequenceTau(), controller.binWidth(),
                    denseLayers, seed, 8, 64, null, listener);
        }
    }

    /**
     * A run's calibration at its start ({@link #forRun}), written once to {@code <runDir>/calibrated.conf}
     * with {@code provenance} as its first comment line; a run that finds the file there (it is being
     * resumed) reuses it. Reports on {@code listener}'s lines; returns the file.
     */
    public static Path atRunStart(Path runDir, String provenance, Path checkpoint, TaskSpec task, int contextMin,
                                  int contextMax, long runSeed, BudgetController.Settings controller,
                                  Set<Integer> denseLayers, Listener listener)
            throws IOException {
        Path file = runDir.resolve("calibrated.conf");
        if (Files.isRegularFile(file)) {
            listener.line("calibration: reusing " + file);
            return file;
        }
        long t0 = System.nanoTime();
        Result r = forRun(checkpoint, task, contextMin, contextMax, runSeed, controller, denseLayers, listener);
        write(file, provenance, r);
        listener.line(String.format(Locale.ROOT, "calibration: budgets %s at tau %.2f in %.1f s -> %s",
                Arrays.toString(r.schedule().budgets()), controller.tau(), (System.nanoTime() - t0) / 1e9, file));
        return file;
    }

    /**
     * Writes a calibrated schedule to {@code file} (atomically): {@code provenance} (who wrote it from
     * what; one or more lines) and the candidates and bin width as comments, then the schedule
     * (format: config/schedules/README.md).
     */
    public static void write(Path file, String provenance, Result r) throws IOException {
        StringBuilder header = new StringBuilder();
        for (String line : provenance.split("\n")) {
            header.append("# ").append(line).append('\n');
        }
        header.append("# candidate budgets ").append(Arrays.toString(r.candidates())).append(", bin width ")
                .append(r.schedule().binWidth()).append("; format: config/schedules/README.md\n");
        AtomicFiles.writeString(file, header + r.schedule().toHocon());
    }
}
