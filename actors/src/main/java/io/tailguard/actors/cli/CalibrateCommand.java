package io.tailguard.actors.cli;

import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.recipes.Calibration;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.sparse.Budgets;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
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
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/**
 * {@code calibrate}: the options and the output of the offline calibration, which
 * {@link Calibration} (recipes) runs: measure the α tail under each candidate budget, then pick per
 * position bin the cheapest budget whose tail meets τ (docs/algorithms.md, "Schedules and offline
 * calibration").
 */
@Command(name = "calibrate", mixinStandardHelpOptions = true,
        description = {"Calibrate a sparsity schedule offline (docs/algorithms.md, \"Schedules and offline calibration\").",
                "For each candidate budget, samples N trajectories per calibration context length (temperature 1, "
                        + "a fixed budget at every length), probes them densely and measures the 5th percentile of alpha "
                        + "per position bin. Per bin it picks the cheapest budget whose p5 >= tau; a bin no budget "
                        + "satisfies gets a budget equal to its end (dense within the bin); a bin no trajectory reached "
                        + "inherits the previous bin's budget (leading ones the first reached bin's). Budgets are then made "
                        + "non-decreasing (running max). With --sequence-tau, the bin holding the largest share of the "
                        + "schedule's predicted sequence alpha (docs/algorithms.md, \"The sequence α\") then goes to the next "
                        + "larger budget until it holds. The schedule is written to --out (atomically; format: "
                        + "config/schedules/README.md). Beyond the last calibrated bin the last budget holds.",
                "predicted_speedup is the cost model's (docs/algorithms.md, \"The cost model\"; machine constants from "
                        + "`bench machine`, else the defaults) dense/schedule cost ratio of generating, at batch 1, one "
                        + "completion after a prompt of the largest calibration context: prompt = the mean prompt length in "
                        + "tokens of that context's calibration prompts, new tokens = their mean generation budget "
                        + "(solution + 25%% + 8, or --max-new), prefill included on both sides.",
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

    @Option(names = "--sequence-tau", defaultValue = "0", description = "The sequence guard's floor under the sequence alpha, "
            + "in (0, 1); 0 (the default): off.")
    double sequenceTau;

    @Option(names = "--budgets", split = ",",
            description = "Candidate budgets in tokens (each " + Budgets.RULE
                    + "); default: 256, 512, ... up to the largest context.")
    int[] budgets;

    @Option(names = "--contexts", split = ",", defaultValue = "1024,2048,4096",
            description = "Prompt lengths of the calibration prompts of a built-in task, spread so several bins get tokens "
                    + "(default: ${DEFAULT-VALUE}); a dataset task uses its own prompts.")
    int[] contexts;

    @Option(names = "--n", defaultValue = "8", description = "Calibration prompts per context (a dataset: its first N records) (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--bin-width", defaultValue = "2048", description = "Position bin width of the schedule, "
            + Budgets.BIN_WIDTH_RULE + " (default: ${DEFAULT-VALUE}).")
    int binWidth;

    @Option(names = "--dense-layers", split = ",", description = "Layers that always decode densely, while measuring and "
            + "in the schedule written (its dense-layers; default: 0,1).")
    int[] denseLayers;

    @Option(names = "--seed", defaultValue = "0", description = "Prompt and sampling seed, the same under every budget (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", defaultValue = "8", description = "Sequences generated together (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--max-new", defaultValue = "256",
            description = "New tokens per trajectory for tasks without worked solutions (math, code) (default: ${DEFAULT-VALUE}).")
    int maxNew;

    @Option(names = "--out", required = true, description = "Schedule file to write (replaced atomically).")
    Path out;

    @Override
    public Integer call() throws IOException {
        MismatchCommand.checkCommon(n, batch, maxNew, binWidth);
        if (!(sequenceTau >= 0 && sequenceTau < 1)) {
            throw new BadInput("--sequence-tau must be 0 (off) or in (0, 1), got " + sequenceTau);
        }
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
        Set<Integer> dense;
        try {
            dense = denseLayers == null ? Schedule.DEFAULT_DENSE_LAYERS : Schedule.denseLayerSet(denseLayers);
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, List.of("dense-layers"));
        }
        checkpoint = Checkpoints.resolve(checkpoint);
        Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
        Path ckpt = checkpoint;
        List<Calibration.Group> groups = task.isDataset() ? Calibration.datasetGroups(task.resolve(0, ckpt), n, seed)
                : Calibration.groups(c -> task.resolve(c, ckpt), ctx, n, seed);
        Calibration.largestPrompt(tok, groups); // a prompt the tokenizer refuses fails here, before the model loads
        int[] candidates = budgets != null ? sortedDistinct(budgets, "--budgets")
                : Calibration.defaultCandidates(tok, groups, task.isDataset() ? null : ctx);
        for (int b : candidates) {
            String problem = Budgets.problem(b);
            if (problem != null) {
                throw new BadInput("--budgets: budget " + b + " " + problem);
            }
        }

        List<TailStats> tables;
        Schedule schedule;
        double speedup;
        try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()))) {
            LoraAdapter adapter = lora.attach(model);
            Calibration.Result r = Calibration.calibrate(model, tok, groups, candidates, tau, sequenceTau, binWidth, dense, seed, batch,
                    maxNew, adapter, progressBars());
            tables = r.tables();
            schedule = r.schedule();
            speedup = Calibration.predictedSpeedup(model.config(), tok, groups, maxNew, schedule);
            Calibration.write(out, "Written by `tailguard calibrate --task " + task.task + " --tau " + tau
                    + (sequenceTau > 0 ? " --sequence-tau " + sequenceTau : "") + "` from "
                    + checkpoint + (lora.lora == null ? "" : "\nsparse actor with the LoRA " + lora.lora), r);
        }
        System.err.println("wrote " + out + ": budgets " + Arrays.toString(schedule.budgets()));

        Map<String, Object> result = new LinkedHashMap<>();
        result.put("schedule", out.toString());
        result.put("budgets", schedule.budgets());
        result.put("predicted_speedup", Progress.round(speedup, 4));
        result.put("tau", tau);
        result.put("sequence_tau", sequenceTau);
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
            entry.put("sequence_alpha", Progress.round(tables.get(j).sequenceAlpha(), 6));
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

    /** A progress bar per measurement on stderr, and the per-budget lines. */
    static Calibration.Listener progressBars() {
        return new Calibration.Listener() {
            private Progress bar;

            @Override
            public Evaluator.Progress started(String label) {
                bar = new Progress(label);
                return bar::update;
            }

            @Override
            public void ended(String label) {
                if (bar != null) {
                    bar.finish();
                    bar = null;
                }
            }

            @Override
            public void line(String text) {
                System.err.println(text);
            }
        };
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
