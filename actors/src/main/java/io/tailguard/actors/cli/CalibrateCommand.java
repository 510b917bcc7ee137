package io.tailguard.actors.cli;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.eval.TailMeasurement;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/**
 * The published offline calibration (ALGORITHMS.md §4): measure the α tail under each candidate
 * budget, then pick per position bin the cheapest budget whose tail meets τ.
 */
@Command(name = "calibrate", mixinStandardHelpOptions = true,
        description = {"Calibrate a sparsity schedule offline (ALGORITHMS.md §4).",
                "For each candidate budget, samples N trajectories per calibration context length (temperature 1, "
                        + "a fixed budget at every length), probes them densely and measures the 5th percentile of alpha "
                        + "per position bin. Per bin it picks the cheapest budget whose p5 >= tau; a bin no budget "
                        + "satisfies gets a budget equal to its end (dense within the bin); a bin no trajectory reached "
                        + "inherits the previous bin's budget (leading ones the first reached bin's). Budgets are then made "
                        + "non-decreasing (running max) and the schedule is written to --out (atomically; format: "
                        + "config/schedules/README.md). Beyond the last calibrated bin the last budget holds.",
                "predicted_speedup is the cost model's (ALGORITHMS.md §4; machine constants from `bench machine`, "
                        + "else the defaults) dense/schedule cost ratio of generating, at batch 1, one completion after a "
                        + "prompt of the largest calibration context: prompt = the mean prompt length in tokens of that "
                        + "context's calibration prompts, new tokens = their mean generation budget (solution + 25%% + 8, "
                        + "or --max-new), prefill included on both sides.",
                "Prints {\"schedule\":FILE,\"budgets\":[..],\"predicted_speedup\":..,\"table\":[{\"budget\":..,"
                        + "\"bins\":[{\"start\":..,\"alpha_p5\":..,\"tokens\":..}]}]}."})
final class CalibrateCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true, description = "Checkpoint directory (with its tokenizer.json); \"default\" is the embedded default, trained once and cached.")
    Path checkpoint;

    @Mixin
    TaskOptions task;

    @Mixin
    LoraOption lora;

    @Option(names = "--tau", required = true, description = "Tail threshold in (0, 1]; the published optimum is 0.86.")
    double tau;

    @Option(names = "--budgets", split = ",",
            description = "Candidate budgets in tokens (multiples of 16, >= 48); default: 256, 512, ... up to the largest context.")
    int[] budgets;

    @Option(names = "--contexts", split = ",", defaultValue = "1024,2048,4096",
            description = "Prompt lengths of the calibration prompts of a built-in task, spread so several bins get tokens "
                    + "(default: ${DEFAULT-VALUE}); a dataset task uses its own prompts.")
    int[] contexts;

    @Option(names = "--n", defaultValue = "8", description = "Calibration prompts per context (a dataset: its first N records) (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--bin-width", defaultValue = "2048", description = "Position bin width of the schedule, a multiple of 16 (default: ${DEFAULT-VALUE}).")
    int binWidth;

    @Option(names = "--seed", defaultValue = "0", description = "Prompt and sampling seed, the same under every budget (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", defaultValue = "8", description = "Sequences generated together (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--max-new", defaultValue = "256",
            description = "New tokens per trajectory for tasks without worked solutions (math, code) (default: ${DEFAULT-VALUE}).")
    int maxNew;

    @Option(names = "--out", required = true, description = "Schedule file to write (replaced atomically).")
    Path out;

    /** The calibration prompts of one context length (or of the dataset). */
    record Group(String label, Task task, List<Prompt> prompts) {}

    @Override
    public Integer call() throws IOException {
        MismatchCommand.checkCommon(n, batch, maxNew, binWidth);
        if (!(tau > 0 && tau <= 1)) {
            throw new BadInput("--tau must be in (0, 1], got " + tau);
        }
        task.validate();
        int[] ctx = sortedDistinct(contexts, "--contexts");
        for (int c : ctx) {
            if (c < 1) {
                throw new BadInput("--contexts: lengths must be >= 1, got " + c);
            }
        }
        checkpoint = Checkpoints.resolve(checkpoint);
        Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
        List<Group> groups = new ArrayList<>();
        if (task.isDataset()) {
            Task t = task.resolve(0);
            groups.add(new Group("dataset", t, Evaluator.prompts(t, n, seed)));
        } else {
            for (int c : ctx) {
                Task t = task.resolve(c);
                groups.add(new Group("context " + c, t, Evaluator.prompts(t, n, seed)));
            }
        }
        Group longest = groups.get(groups.size() - 1);
        double promptLength = 0;
        double newTokens = 0;
        int largestPrompt = 0;
        for (Group g : groups) {
            for (Prompt p : g.prompts()) {
                largestPrompt = Math.max(largestPrompt, TaskFormat.promptIds(tok, p).length);
            }
        }
        for (Prompt p : longest.prompts()) {
            promptLength += TaskFormat.promptIds(tok, p).length;
            newTokens += TaskFormat.maxNewTokens(longest.task(), p, tok, maxNew);
        }
        promptLength /= longest.prompts().size();
        newTokens /= longest.prompts().size();
        int[] candidates = budgets != null ? sortedDistinct(budgets, "--budgets") : defaultBudgets(task.isDataset() ? largestPrompt : ctx[ctx.length - 1]);
        for (int b : candidates) {
            try {
                Schedule.fixed(b);
            } catch (IllegalArgumentException e) {
                throw new BadInput("--budgets: " + e.getMessage().replaceFirst("^budget: ", ""));
            }
        }

        List<TailStats> tables;
        Schedule schedule;
        double speedup;
        try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()))) {
            LoraAdapter adapter = lora.attach(model);
            tables = measure(model, tok, groups, candidates, binWidth, seed, batch, maxNew, adapter, true);
            schedule = Schedule.ofBins(binWidth, choose(candidates, tables, tau, binWidth));
            CostModel cost = new CostModel(model.config(), CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()));
            speedup = cost.predictedSpeedup(schedule, (int) Math.round(promptLength), (int) Math.ceil(newTokens));
        }
        String header = "# Written by `tailguard calibrate --task " + task.task + " --tau " + tau + "` from " + checkpoint
                + (lora.lora == null ? "" : "\n# sparse actor with the LoRA " + lora.lora)
                + "\n# candidate budgets " + Arrays.toString(candidates) + ", bin width " + binWidth
                + "; format: config/schedules/README.md\n";
        io.tailguard.model.io.AtomicFiles.writeString(out, header + schedule.toHocon());
        System.err.println("wrote " + out + ": budgets " + Arrays.toString(schedule.budgets()));

        Map<String, Object> result = new LinkedHashMap<>();
        result.put("schedule", out.toString());
        result.put("budgets", schedule.budgets());
        result.put("predicted_speedup", Progress.round(speedup, 4));
        result.put("tau", tau);
        result.put("bin_width", binWidth);
        result.put("lora", lora.describe());
        List<Map<String, Object>> table = new ArrayList<>();
        for (int j = 0; j < candidates.length; j++) {
            List<Map<String, Object>> bins = new ArrayList<>();
            for (TailStats.BinSummary s : tables.get(j).summary()) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("start", s.start());
                row.put("alpha_p5", Progress.round(s.alphaP5(), 6));
                row.put("tokens", s.tokens());
                bins.add(row);
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("budget", candidates[j]);
            entry.put("bins", bins);
            table.add(entry);
        }
        result.put("table", table);
        if (common.json) {
            Json.print(result);
        } else {
            System.out.printf("%s: budgets %s, predicted speedup %.3f%n", out, Arrays.toString(schedule.budgets()), speedup);
        }
        return 0;
    }

    /**
     * The calibration measurements: for each candidate budget, the α tails of the groups' prompts
     * sampled (temperature 1, the same seed under every budget) under that fixed budget, merged.
     */
    static List<TailStats> measure(Qwen3Model model, Tokenizer tok, List<Group> groups, int[] candidates, int binWidth,
                                   long seed, int batch, int maxNew, LoraAdapter adapter, boolean progress) {
        List<TailStats> tables = new ArrayList<>();
        for (int b : candidates) {
            TailStats merged = new TailStats(binWidth);
            for (Group g : groups) {
                Progress bar = progress ? new Progress("budget " + b + ", " + g.label()) : null;
                try {
                    merged.merge(TailMeasurement.measure(model, tok, g.task(), g.prompts(), Schedule.fixed(b), binWidth,
                            1.0, seed, batch, maxNew, bar == null ? (done, total) -> { } : bar::update, adapter).tails());
                } finally {
                    if (bar != null) {
                        bar.finish();
                    }
                }
            }
            tables.add(merged);
            StringBuilder line = new StringBuilder("calibration: budget " + b + ": p5 by bin");
            for (TailStats.BinSummary s : merged.summary()) {
                line.append(String.format(java.util.Locale.ROOT, " [%d]=%.4f", s.start(), s.alphaP5()));
            }
            System.err.println(line);
        }
        return tables;
    }

    /**
     * Per bin, the cheapest candidate (ascending) whose tail p5 ≥ τ; max(48, bin end) (dense within
     * the bin) when none does; an unreached bin inherits the previous bin's budget (leading
     * unreached bins the first reached bin's); then a running max so budgets never decrease.
     */
    static int[] choose(int[] ascendingBudgets, List<TailStats> tables, double tau, int binWidth) {
        int bins = 0;
        for (TailStats t : tables) {
            bins = Math.max(bins, t.binCount());
        }
        Integer[] pick = new Integer[bins];
        for (int i = 0; i < bins; i++) {
            boolean reached = false;
            for (int j = 0; j < ascendingBudgets.length && pick[i] == null; j++) {
                TailStats t = tables.get(j);
                if (t.count(i) > 0) {
                    reached = true;
                    if (t.p5(i) >= tau) {
                        pick[i] = ascendingBudgets[j];
                    }
                }
            }
            if (reached && pick[i] == null) {
                pick[i] = (int) Math.max(Schedule.MIN_BUDGET, Math.min((long) (i + 1) * binWidth, Integer.MAX_VALUE / 16 * 16));
            }
        }
        Integer first = null;
        for (Integer p : pick) {
            if (p != null) {
                first = p;
                break;
            }
        }
        if (first == null) {
            throw new IllegalArgumentException("calibration produced no probed tokens; nothing to calibrate on");
        }
        int[] out = new int[bins];
        int previous = first;
        for (int i = 0; i < bins; i++) {
            int b = pick[i] != null ? pick[i] : previous;
            out[i] = Math.max(b, i > 0 ? out[i - 1] : b);
            previous = out[i];
        }
        return out;
    }

    /** 256, 512, ... up to the largest context (at least one candidate). */
    static int[] defaultBudgets(int largestContext) {
        int count = Math.max(1, largestContext / 256);
        int[] b = new int[count];
        for (int i = 0; i < count; i++) {
            b[i] = 256 * (i + 1);
        }
        return b;
    }

    private static int[] sortedDistinct(int[] values, String option) {
        if (values.length == 0) {
            throw new BadInput(option + ": give at least one value");
        }
        TreeSet<Integer> s = new TreeSet<>();
        for (int v : values) {
            s.add(v);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }
}
