package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import io.tailguard.model.io.AtomicFiles;
import io.tailguard.recipes.Calibration;
import io.tailguard.recipes.RolloutSpeedup;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.actors.runtime.CheckpointStore;
import io.tailguard.actors.runtime.RunObserver;
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
import java.util.Locale;
import java.util.Map;
import java.util.Set;
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

    @Override
    public Integer call() throws Exception {
        Path file = config != null ? config : RunConfig.defaultFile();
        Config c = RunConfig.load(file, sets);
        String where = file == null ? "configuration" : file.toString();
        RunSettings s = RunSettings.parse(c, where);
        // read before the run, so a bad file fails at once (exit 2, naming it)
        if (!s.train().compareSchedule().isBlank()) {
            Schedule.parse(Path.of(s.train().compareSchedule()));
        }
        Path start = Checkpoints.resolve(Path.of(s.train().checkpoint()));
        Files.createDirectories(s.train().out());
        if (s.startSchedule().equals(RunSettings.CALIBRATE)) {
            // The offline calibration on the warm start, then the controller starts from it (and the
            // end-of-run timing compares against it unless another schedule is named).
            Path calibrated = calibrateAtStart(s, start);
            c = c.withValue("tailguard.controller.schedule", ConfigValueFactory.fromAnyRef(calibrated.toString()));
            if (s.train().compareSchedule().isBlank()) {
                c = c.withValue("tailguard.train.compare-schedule", ConfigValueFactory.fromAnyRef(calibrated.toString()));
            }
            s = RunSettings.parse(c, where);
        }
        Schedule compare = s.train().compareSchedule().isBlank() ? null : Schedule.parse(Path.of(s.train().compareSchedule()));
        Set<Integer> denseLayers = startDenseLayers(s);
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
                fin = recorder.finished().get(limit, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new IllegalStateException("the run did not finish within " + limit + " s");
            }
            lastPolicy = new CheckpointStore(s.train().out().resolve("store")).dirOf(fin.steps());
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<RunObserver.Window> windows = recorder.windows();
        // the controller keeps its start schedule's dense layers in every schedule it makes
        Schedule finalSchedule = windows.isEmpty() ? Schedule.dense()
                : Schedule.ofBins(s.controller().binWidth(), windows.get(windows.size() - 1).budgets())
                .withDenseLayers(denseLayers);
        double[] speedups = Files.isDirectory(lastPolicy)
                ? RolloutSpeedup.measure(lastPolicy, s.train().task(), s.train().contextMin(), s.train().contextMax(),
                        s.rollout().promptsPerLease(), s.rollout().groupSize(), s.train().seed(),
                        compare == null ? List.of(finalSchedule) : List.of(finalSchedule, compare))
                : new double[] {Double.NaN, Double.NaN};
        double speedup = speedups[0];
        var evals = recorder.evaluations();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("steps", fin.steps());
        out.put("pass_at_1_start", evals.isEmpty() ? Double.NaN : evals.get(0).passAt1());
        out.put("pass_at_1_end", evals.size() < 2 ? Double.NaN : evals.get(evals.size() - 1).passAt1());
        out.put("rollout_speedup", Progress.round(speedup, 3));
        if (compare != null) {
            out.put("compare_schedule", s.train().compareSchedule());
            out.put("compare_budgets", compare.budgets());
            out.put("compare_speedup", Progress.round(speedups[1], 3));
            out.put("speedup_vs_compare", Progress.round(speedup / speedups[1], 3));
        }
        out.put("predicted_speedup", windows.isEmpty() ? Double.NaN : Progress.round(windows.get(windows.size() - 1).predictedSpeedup(), 3));
        out.put("tail_in_band_fraction", Progress.round(recorder.inBandFraction(Math.max(1, windows.size() / 5), 0.03, 0.05,
                s.controller().minTokens()), 3));
        out.put("final_budgets", finalSchedule.budgets());
        out.put("schedule_versions", windows.isEmpty() ? 1 : windows.get(windows.size() - 1).scheduleVersion());
        Map<String, Object> compressed = recorder.compressedSummary();
        if (s.compression().rollout() || compressed != null) {
            out.put("compressed_rollout", compressed == null ? "no compressed version was offered" : compressedRow(compressed));
        }
        out.put("seconds", Progress.round(seconds, 1));
        out.put("finish_reason", fin.reason());
        Path report = RunReport.write(s.train().out().resolve("report"), recorder, out);
        out.put("report", report.toString());
        if (common.json) {
            Json.print(out);
        } else {
            out.forEach((k, v) -> System.out.println(k + ": " + (v instanceof int[] a ? Arrays.toString(a) : v)));
        }
        return 0;
    }

    /**
     * The dense layers of the configured start schedule, which the controller keeps in every schedule
     * it makes; the default when it starts dense or the file cannot be read here (the node names a
     * bad file itself, and a restarted controller starts from its persisted schedule).
     */
    private static Set<Integer> startDenseLayers(RunSettings s) {
        if (s.startSchedule().isBlank()) {
            return Schedule.DEFAULT_DENSE_LAYERS;
        }
        try {
            return Schedule.parse(Path.of(s.startSchedule())).denseLayers();
        } catch (IllegalArgumentException e) {
            return Schedule.DEFAULT_DENSE_LAYERS;
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
        return m;
    }

    /**
     * {@code tailguard.controller.schedule = calibrate}: the published offline calibration on the
     * warm start ({@link Calibration#forRun}: the controller's ladder as candidates, its τ and bin
     * width, prompts of its own stream at context-min and context-max), written once to
     * {@code <out>/calibrated.conf} (a resumed run reuses it).
     */
    static Path calibrateAtStart(RunSettings s, Path start) throws java.io.IOException {
        Path file = s.train().out().resolve("calibrated.conf");
        if (Files.isRegularFile(file)) {
            System.err.println("calibration: reusing " + file);
            return file;
        }
        var ctl = s.controller();
        long t0 = System.nanoTime();
        Calibration.Result r = Calibration.forRun(start, s.train().task(), s.train().contextMin(), s.train().contextMax(),
                s.train().seed(), ctl, Calibration.Listener.linesOnly(System.err::println));
        Schedule schedule = r.schedule();
        AtomicFiles.writeString(file, "# Written by `tailguard train` (tailguard.controller.schedule = calibrate) from "
                + start + " at tau " + ctl.tau() + "\n# candidate budgets " + Arrays.toString(r.candidates()) + ", bin width "
                + ctl.binWidth() + "; format: config/schedules/README.md\n" + schedule.toHocon());
        System.err.printf(Locale.ROOT, "calibration: budgets %s at tau %.2f in %.1f s -> %s%n",
                Arrays.toString(schedule.budgets()), ctl.tau(), (System.nanoTime() - t0) / 1e9, file);
        return file;
    }
}
