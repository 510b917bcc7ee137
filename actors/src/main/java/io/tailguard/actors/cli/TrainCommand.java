package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import io.tailguard.recipes.Calibration;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.actors.runtime.CheckpointStore;
import io.tailguard.actors.runtime.RunObserver;
import io.tailguard.actors.runtime.RunFigures;
import io.tailguard.actors.runtime.RunRecord;
import io.tailguard.actors.runtime.RunRecorder;
import io.tailguard.actors.runtime.RunReport;
import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.actors.runtime.TailguardNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = "The main job: asynchronous RL with tail-guarded sparse rollouts, the whole actor system in one process.")
final class TrainCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--config", description = "HOCON run configuration (default: config/quickstart.conf).")
    Path config;

    @Option(names = "--set", description = "Override one key, e.g. --set tailguard.train.steps=10 (repeatable).")
    List<String> sets = new ArrayList<>();

    @Option(names = "--calibrate-only", description = "Calibrate the start schedule as the run would "
            + "(tailguard.controller.schedule = calibrate), write it to <out>/calibrated.conf and stop: runs that "
            + "name that file as their schedule then share one calibration (bench/central-result.sh).")
    boolean calibrateOnly;

    @Override
    public Integer call() throws Exception {
        long startMillis = System.currentTimeMillis();
        Path file = config != null ? config : RunConfig.defaultFile();
        Config c = RunConfig.load(file, sets);
        String where = file == null ? "configuration" : file.toString();
        // every role in one process: the admin rules of the controller's node apply
        RunSettings s = RunSettings.parse(c, where, TailguardNode.ROLES);
        // read before the run, so a bad file fails at once (exit 2, naming it)
        if (!s.train().compareSchedule().isBlank()) {
            Schedule.parse(Path.of(s.train().compareSchedule()));
        }
        if (calibrateOnly && !s.startSchedule().equals(RunSettings.CALIBRATE)) {
            throw new BadInput("--calibrate-only: tailguard.controller.schedule is \"" + s.startSchedule()
                    + "\", not \"calibrate\"; there is nothing to calibrate");
        }
        Path start = Checkpoints.resolveSetting(s.train().checkpoint(), "tailguard.train.checkpoint");
        // the task's chat format for this checkpoint: a bad choice fails here, naming its key
        s = s.withCheckpoint(start);
        RunSettings.checkModel(s.compression(), io.tailguard.model.io.ConfigJson.read(start.resolve(io.tailguard.model.io.CheckpointDir.CONFIG)));
        refuseFinished(s);
        Files.createDirectories(s.train().out());
        String configuredSchedule = s.startSchedule();
        double calibrationSeconds = Double.NaN;
        if (s.startSchedule().equals(RunSettings.CALIBRATE)) {
            long calStart = System.nanoTime();
            // The offline calibration on the warm start, then the controller starts from it (and the
            // end-of-run timing compares against it unless another schedule is named).
            Path calibrated = Calibration.atRunStart(s.train().out(), "Written by `tailguard train` "
                    + "(tailguard.controller.schedule = calibrate) from " + start + " at tau " + s.controller().tau(), start,
                    s.train().task(), s.train().contextMin(), s.train().contextMax(), s.train().seed(), s.controller(),
                    s.denseLayers(), Calibration.Listener.linesOnly(System.err::println));
            c = c.withValue("tailguard.controller.schedule", ConfigValueFactory.fromAnyRef(calibrated.toString()));
            if (s.train().compareSchedule().isBlank()) {
                c = c.withValue("tailguard.train.compare-schedule", ConfigValueFactory.fromAnyRef(calibrated.toString()));
            }
            s = RunSettings.parse(c, where).withCheckpoint(start);
            calibrationSeconds = (System.nanoTime() - calStart) / 1e9;
            if (calibrateOnly) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("schedule", calibrated.toString());
                out.put("budgets", Schedule.parse(calibrated).budgets());
                out.put("calibration_seconds", Progress.round(calibrationSeconds, 1));
                if (common.json) {
                    Json.print(out);
                } else {
                    System.out.println("calibrated " + calibrated + " in " + Progress.round(calibrationSeconds, 1) + " s");
                }
                return 0;
            }
        }
        Schedule compare = s.train().compareSchedule().isBlank() ? null : Schedule.parse(Path.of(s.train().compareSchedule()));
        // thread caps that say auto, split as the node splits them (every role in this process): the run record names them
        s = s.withThreadSplit(TailguardNode.ROLES, io.tailguard.model.NativeLibraries.threads());
        // the controller's own start (a restarted one's persisted schedule): its dense layers stay in every schedule
        Schedule startSchedule = TailguardNode.startSchedule(s);
        RunRecorder recorder = new RunRecorder(System.err, s.train().steps());
        long t0 = System.nanoTime();
        RunObserver.Finished fin;
        Path lastPolicy;
        try (TailguardNode node = new TailguardNode(c, s, TailguardNode.ROLES, start, common.device(), true, recorder.behavior())) {
            if (node.metricsPort() > 0) {
                System.err.println("metrics: http://" + s.metrics().host() + ":" + node.metricsPort() + "/metrics");
            }
            if (node.adminPort() > 0) {
                System.err.println("admin: http://" + s.admin().host() + ":" + node.adminPort() + " (tailguard tune / status)");
            }
            node.watch(file);
            long limit = s.train().maxTime().isZero() ? Long.MAX_VALUE / 2 : s.train().maxTime().toSeconds() + 600;
            try {
                // the run's end, or a failure that stops it (RunStop)
                java.util.concurrent.CompletableFuture.anyOf(recorder.finished(), node.stopped()).get(limit, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new IllegalStateException("the run did not finish within " + limit + " s");
            }
            if (node.stopped().isDone()) {
                throw new RunStopped(node.stopped().join());
            }
            fin = recorder.finished().join();
            lastPolicy = new CheckpointStore(s.train().out().resolve("store")).dirOf(fin.steps());
        }
        long endMillis = System.currentTimeMillis();
        double seconds = (System.nanoTime() - t0) / 1e9;
        RunFigures f = RunFigures.of(recorder, s, startSchedule, compare, lastPolicy);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("steps", fin.steps());
        out.put("pass_at_1_start", f.passAt1Start());
        out.put("pass_at_1_end", f.passAt1End());
        out.put("pass_at_1_curve", RunRecord.curve(recorder.evaluations(), startMillis));
        if (s.train().task().isDataset()) {
            out.put("held_out", s.train().heldOut() != null ? s.train().heldOut().toString()
                    : "none: no held-out file (tailguard.train.held-out), so pass@1 is not measured (never on training records)");
        }
        out.put("rollout_speedup", Progress.round(f.rolloutSpeedup(), 3));
        out.put("rollout_speedup_source", f.rolloutSpeedupSource());
        out.put("rollout_wall_speedup", Progress.round(f.rollout().wallSpeedup(), 3));
        out.put("predicted_decode_speedup", Progress.round(f.rollout().predictedSpeedup(), 3));
        out.put("speedup_measurements", f.rollout().measurements());
        out.put("decode_fraction", Progress.round(f.rollout().decodeFraction(), 3));
        Map<String, Object> phases = new LinkedHashMap<>();
        phases.put("generation", Progress.round(f.rollout().generationSeconds(), 1));
        phases.put("dense_reference", Progress.round(f.rollout().referenceSeconds(), 1));
        phases.put("scoring", Progress.round(f.rollout().scoringSeconds(), 1));
        phases.put("shadow", Progress.round(f.rollout().shadowSeconds(), 1));
        out.put("rollout_worker_seconds", phases);
        out.put("learner_seconds", Progress.round(recorder.steps().stream().mapToDouble(RunObserver.Step::learnSeconds).sum(), 1));
        var byOption = io.tailguard.actors.runtime.RolloutTimes.byOption(recorder.rollouts());
        if (byOption.size() > 1 || !byOption.containsKey(io.tailguard.actors.runtime.RunObserver.Rollout.PLAIN)) {
            Map<String, Object> options = new LinkedHashMap<>();
            byOption.forEach((option, t) -> {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("speedup_measurements", t.measurements());
                row.put("rollout_speedup", Progress.round(t.speedup(), 3));
                row.put("rollout_wall_speedup", Progress.round(t.wallSpeedup(), 3));
                row.put("predicted_decode_speedup", Progress.round(t.predictedSpeedup(), 3));
                row.put("decode_fraction", Progress.round(t.decodeFraction(), 3));
                options.put(option, row);
            });
            out.put("rollout_speedup_by_option", options);
        }
        // how long each rollout option (weights, cache and schedule) was the one in use: windows per label
        Map<String, Integer> inUse = new LinkedHashMap<>();
        for (var w : recorder.windows()) {
            if (w.option() != null && w.option().inUse() != null) {
                inUse.merge(w.option().inUse(), 1, Integer::sum);
            }
        }
        if (inUse.size() > 1 || (inUse.size() == 1 && !inUse.containsKey(io.tailguard.actors.runtime.RunObserver.Rollout.PLAIN))) {
            out.put("option_in_use_windows", inUse);
        }
        if (compare != null) {
            out.put("compare_schedule", s.train().compareSchedule());
            out.put("compare_budgets", compare.budgets());
            out.put("compare_speedup", Progress.round(f.compareSpeedup(), 3));
            out.put("speedup_vs_compare", Progress.round(f.speedupVsCompare(), 3));
        }
        out.put("predicted_speedup", Progress.round(f.predictedSpeedup(), 3));
        out.put("tail_in_band_fraction", Progress.round(f.tailInBandFraction(), 3));
        out.put("tail_at_floor_fraction", Progress.round(f.tailAtFloorFraction(), 3));
        if (s.controller().sequenceGuard()) {
            out.put("tail_by_sequence_fraction", Progress.round(f.tailBySequenceFraction(), 3));
        }
        out.put("sequence_alpha", sequenceAlpha(recorder.windows(), s.controller().sequenceTau()));
        out.put("final_budgets", f.finalSchedule().budgets());
        out.put("schedule_versions", f.scheduleVersions());
        Map<String, Object> compressed = recorder.compressedSummary();
        if (s.compression().rollout() || compressed != null) {
            out.put("compressed_rollout", compressed == null ? "no compressed version was offered" : compressedRow(compressed));
        }
        out.put("seconds", Progress.round(seconds, 1));
        out.put("finish_reason", fin.reason());
        Path report = RunReport.write(s.train().out().resolve("report"), recorder, out);
        out.put("report", report.toString());
        Path record = s.train().out().resolve(RunRecord.FILE_NAME);
        RunRecord.of(recorder, startMillis, endMillis, RunRecord.settingsOf(s, configuredSchedule, startSchedule, calibrationSeconds),
                out).write(record);
        out.put("record", record.toString());
        if (common.json) {
            Json.print(out);
        } else {
            out.forEach((k, v) -> System.out.println(k + ": " + (v instanceof int[] a ? Arrays.toString(a) : v)));
        }
        return 0;
    }

    /**
     * A run directory whose run record says all its steps are done is not run again: the run would
     * resume, find nothing to train and overwrite that run's record and report with an empty one.
     * A run cut off before its last step (no record, or one with fewer steps) resumes as before.
     */
    static void refuseFinished(RunSettings s) {
        Path previous = s.train().out().resolve(RunRecord.FILE_NAME);
        if (!Files.isRegularFile(previous)) {
            return;
        }
        Object done;
        try {
            done = RunRecord.read(previous).summary().get("steps");
        } catch (IllegalArgumentException e) {
            throw new BadInput("tailguard.train.out: " + e.getMessage());
        }
        if (done instanceof Number n && n.intValue() >= s.train().steps()) {
            throw new BadInput("tailguard.train.out: " + s.train().out() + " holds a finished run of " + n.intValue() + " steps ("
                    + previous + "); set tailguard.train.out to a new directory, or tailguard.train.steps above "
                    + n.intValue() + " to train it further");
        }
    }

    /** The compressed option's summary with shares and α rounded (3 decimals), per-bin p5 as a list (null: no tokens). */
    static Map<String, Object> compressedRow(Map<String, Object> c) {
        Map<String, Object> m = new LinkedHashMap<>(c);
        m.put("token_share", Progress.round((Double) c.get("token_share"), 3));
        double[] p5 = (double[]) c.get("last_alpha_p5");
        List<Object> bins = new ArrayList<>();
        if (p5 != null) {
            for (double a : p5) {
                bins.add(Double.isNaN(a) ? null : Progress.round(a, 3));
            }
        }
        m.put("last_alpha_p5", bins);
        for (String k : List.of("in_use_predicted_speedup", "in_use_tokens_per_s", "plain_tokens_per_s", "measured_speedup_vs_plain")) {
            if (c.get(k) instanceof Double x) {
                m.put(k, Double.isNaN(x) ? null : Progress.round(x, 3));
            }
        }
        return m;
    }

    /**
     * The option in use's sequence α over the windows that judged it (docs/algorithms.md, "The
     * sequence α"): their mean, lowest and last, how many, and the guard's floor (0: off); null
     * when no window judged it.
     */
    static Map<String, Object> sequenceAlpha(List<io.tailguard.actors.runtime.RunObserver.Window> windows, double sequenceTau) {
        double sum = 0;
        double min = Double.NaN;
        double last = Double.NaN;
        int n = 0;
        for (io.tailguard.actors.runtime.RunObserver.Window w : windows) {
            double a = w.sequenceAlpha();
            if (!Double.isNaN(a)) {
                sum += a;
                min = n == 0 ? a : Math.min(min, a);
                last = a;
                n++;
            }
        }
        if (n == 0) {
            return null;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("mean", Progress.round(sum / n, 4));
        m.put("min", Progress.round(min, 4));
        m.put("last", Progress.round(last, 4));
        m.put("windows", n);
        m.put("sequence_tau", sequenceTau);
        return m;
    }
}
