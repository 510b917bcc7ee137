package io.tailguard.actors.cli;

import io.tailguard.actors.runtime.RunComparison;
import io.tailguard.actors.runtime.RunRecord;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "compare-runs", mixinStandardHelpOptions = true,
        description = {"Compares `train` runs from their run records (<out>/run-record.json): writes DIR/table.md and PNG plots "
                + "(pass@1 against steps and seconds, reward, rollout seconds and TIS truncation per step, p5 α over time with τ).",
                "Runs with the same label are runs of one arm (seeds, and replicates of a seed: tailguard.train.sampling-seed); "
                        + "each run is timed to the final pass@1 of the reference arm's run with the same seed (the mean over "
                        + "its replicates).",
                "With --json prints {\"reference\":..,\"runs\":[{\"label\":..,\"pass_at_1_start\":..,\"pass_at_1_end\":..,"
                        + "\"seconds_to_target\":..,\"ratio_to_reference\":..,...}],\"table\":..,\"plots\":[..]}."})
final class CompareRunsCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--out", required = true, description = "Directory for table.md and the plots (created; its other files are left alone).")
    Path out;

    @Option(names = "--label", description = "The arm of each run, in the order of the runs (repeatable; one per run). "
            + "Default: each run directory's name.")
    List<String> labels = new ArrayList<>();

    @Option(names = "--reference", description = "The arm the others are timed against (default: \"dense\" if an arm has that label, "
            + "else the first run's).")
    String reference;

    @Parameters(arity = "1..*", paramLabel = "RUN_DIR", description = "Run directories (tailguard.train.out of each run).")
    List<Path> runs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        if (!labels.isEmpty() && labels.size() != runs.size()) {
            throw new BadInput("--label: " + labels.size() + " labels for " + runs.size() + " runs (give one per run, or none)");
        }
        List<RunComparison.Run> loaded = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            Path dir = runs.get(i);
            if (!Files.isDirectory(dir)) {
                throw new BadInput(dir + ": no such run directory");
            }
            String label = labels.isEmpty() ? String.valueOf(dir.toAbsolutePath().normalize().getFileName()) : labels.get(i);
            if (label.isBlank()) {
                throw new BadInput("--label: empty label for " + dir);
            }
            loaded.add(new RunComparison.Run(label, dir, RunRecord.read(dir)));
        }
        String ref = reference != null ? reference
                : loaded.stream().anyMatch(r -> r.label().equals("dense")) ? "dense" : loaded.get(0).label();
        RunComparison.Result r = RunComparison.compare(loaded, ref, out);
        if (common.json) {
            // as a tree, so that what could not be computed prints as null rather than being left out
            System.out.println(r.summary());
            System.out.flush();
        } else {
            System.out.print(Files.readString(r.table()).lines().takeWhile(l -> !l.isEmpty()).reduce("", (a, b) -> a + b + "\n"));
            System.out.println("table: " + r.table());
        }
        return 0;
    }
}
