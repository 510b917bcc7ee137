package io.tailguard.actors.runtime;

import com.google.gson.JsonElement;
import io.tailguard.model.io.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Several `train` runs side by side, from their run records ({@link RunRecord}): `compare-runs`.
 * Runs with the same label are runs of one arm: its seeds, and replicates of a seed (the same
 * prompts, other sampling seeds: tailguard.train.sampling-seed). Writes table.md (one row per run, a mean row per
 * arm with several runs) and PNG plots: pass@1 against steps and against seconds, reward and
 * rollout seconds per step, TIS truncation per step, the lowest p5 α over the bins per window with
 * τ, and each run's p5 α per bin with τ. A window's p5 α of a bin counts where the bin had at least
 * min-tokens tokens in it ({@link #alpha}).
 *
 * <p>Seconds are wall seconds since `train` began (its calibration included) less the held-out
 * evaluations before that moment ("train seconds"): every arm evaluates the same prompts densely,
 * so that time says nothing about the arm and would only pull the arms' ratios towards 1. The
 * table also gives the plain wall seconds.
 *
 * <p>Time to target: a run's target is the final pass@1 of the reference arm's run with the same
 * seed, and its reference seconds are when that reference run first reached it (at or before its
 * end); without a reference run of that seed, the target is the mean final pass@1 of the reference
 * arm's seeds (each seed once) and the reference seconds the mean of their times to it. Several
 * reference runs of one seed (replicates) count as one by their means: the target is the mean of
 * their final pass@1, the reference seconds and train seconds the means of theirs (a run that never
 * reached the target counting with its whole train seconds, {@link #referenceSeconds}), the
 * figures at equal steps below the means over them. Only reference runs with a final pass@1 count. A run reaches a target at the
 * first evaluation with pass@1 at least the target. Its time to the target is also given over the
 * reference run's whole train seconds ("× run"): a reference run whose pass@1 touched its final value
 * early (one evaluation of a few dozen prompts moves by several points) makes the first ratio small
 * by chance, the second is the time the reference took to finish.
 *
 * <p>At equal steps: a run's pass@1 at the last step its same-seed reference run evaluated (NaN when
 * it has no evaluation at that step), and the mean of (run − reference) over every step after the
 * start where both evaluated; both NaN without a reference run of that seed, both the mean over the
 * reference runs of that seed where it has several (so a reference replicate's own gap is its
 * distance from its replicates' mean). An arm that runs more
 * steps than the reference (to show how far it gets in the reference's time) is compared on the
 * steps they share.
 */
public final class RunComparison {
    private RunComparison() {
    }

    /** One run to compare: its label (arm), its directory, its record. */
    public record Run(String label, Path dir, RunRecord record) {}

    /**
     * One run's figures; NaN where there is nothing to compute. Per-bin arrays: NaN where a bin never
     * had tokens. workerSeconds: the rollout workers' seconds (every phase of `train`'s
     * rollout_worker_seconds), guardSeconds the part of them the tail guard and the in-run speedup
     * spend (dense reference, α scoring, shadow replays), learnerSeconds the learner's.
     */
    public record Row(String label, String dir, double seed, int steps, double wallSeconds, double trainSeconds, double evalSeconds,
                      double calibrationSeconds, double passStart, double passEnd, double meanRolloutSeconds, double meanTisTruncated,
                      double[] minAlphaP5, double[] lastAlphaP5, double target, double secondsToTarget, double referenceSeconds,
                      double workerSeconds, double guardSeconds, double learnerSeconds, double referenceTrainSeconds,
                      double passAtReferenceEnd, double meanGapAtEqualSteps) {
        /** The run's time to its target over its reference run's. */
        public double ratioToReference() {
            return secondsToTarget / referenceSeconds;
        }

        /** The run's time to its target over its reference run's whole train seconds. */
        public double ratioToReferenceRun() {
            return secondsToTarget / referenceTrainSeconds;
        }
    }

    /** What compare wrote: the rows, the table and the plots. */
    public record Result(String reference, List<Row> rows, Path table, List<Path> plots) {
        /** The `--json` summary (NaN as null). */
        public JsonElement summary() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("reference", reference);
            List<Object> runs = new ArrayList<>();
            for (Row r : rows) {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("label", r.label());
                x.put("dir", r.dir());
                x.put("seed", r.seed());
                x.put("steps", r.steps());
                x.put("wall_seconds", round(r.wallSeconds(), 1));
                x.put("train_seconds", round(r.trainSeconds(), 1));
                x.put("eval_seconds", round(r.evalSeconds(), 1));
                x.put("calibration_seconds", round(r.calibrationSeconds(), 1));
                x.put("pass_at_1_start", r.passStart());
                x.put("pass_at_1_end", r.passEnd());
                x.put("mean_rollout_seconds", round(r.meanRolloutSeconds(), 3));
                x.put("mean_tis_truncated", round(r.meanTisTruncated(), 4));
                x.put("rollout_worker_seconds", round(r.workerSeconds(), 1));
                x.put("guard_seconds", round(r.guardSeconds(), 1));
                x.put("learner_seconds", round(r.learnerSeconds(), 1));
                x.put("min_alpha_p5", rounded(r.minAlphaP5()));
                x.put("last_alpha_p5", rounded(r.lastAlphaP5()));
                x.put("target_pass_at_1", r.target());
                x.put("seconds_to_target", round(r.secondsToTarget(), 1));
                x.put("reference_seconds_to_target", round(r.referenceSeconds(), 1));
                x.put("reference_train_seconds", round(r.referenceTrainSeconds(), 1));
                x.put("ratio_to_reference", round(r.ratioToReference(), 3));
                x.put("ratio_to_reference_run", round(r.ratioToReferenceRun(), 3));
                x.put("pass_at_1_at_reference_end", r.passAtReferenceEnd());
                x.put("mean_gap_at_equal_steps", round(r.meanGapAtEqualSteps(), 4));
                runs.add(x);
            }
            m.put("runs", runs);
            m.put("table", table.toString());
            m.put("plots", plots.stream().map(Path::toString).toList());
            return RunRecord.tree(m);
        }
    }

    /**
     * Compares the runs and writes table.md and the plots into out (each file atomically).
     *
     * @param reference the label of the arm the others are timed against (it must be one of the runs')
     */
    public static Result compare(List<Run> runs, String reference, Path out) {
        if (runs.isEmpty()) {
            throw new IllegalArgumentException("no runs to compare");
        }
        if (runs.stream().noneMatch(r -> r.label().equals(reference))) {
            throw new IllegalArgumentException("--reference: no run is labelled \"" + reference + "\"");
        }
        List<Row> rows = rows(runs, reference);
        try {
            Files.createDirectories(out);
            List<Path> plots = plots(runs, out);
            Path table = out.resolve("table.md");
            AtomicFiles.writeString(table, table(rows, reference, plots));
            return new Result(reference, rows, table, plots);
        } catch (IOException e) {
            throw new UncheckedIOException("compare-runs " + out + ": " + e.getMessage(), e);
        }
    }

    /** Each run's figures, timed against the reference arm. */
    static List<Row> rows(List<Run> runs, String reference) {
        // the reference runs that can set a target (a final pass@1), by seed: several of one seed are replicates
        Map<Double, List<RunRecord>> bySeed = new LinkedHashMap<>();
        for (Run x : runs) {
            if (x.label().equals(reference) && !Double.isNaN(passEnd(x.record()))) {
                bySeed.computeIfAbsent(number(x.record().settings().get("seed")), k -> new ArrayList<>()).add(x.record());
            }
        }
        // without a reference run of its seed: the mean over the reference's seeds, each seed once
        double meanTarget = meanFinite(bySeed.values().stream().mapToDouble(RunComparison::meanFinal).toArray());
        double meanRefSeconds = meanFinite(bySeed.values().stream().mapToDouble(x -> referenceSeconds(x, meanTarget)).toArray());
        double meanRefTrain = meanFinite(bySeed.values().stream().mapToDouble(RunComparison::meanTrainSeconds).toArray());
        List<Row> rows = new ArrayList<>();
        for (Run run : runs) {
            RunRecord r = run.record();
            double seed = number(r.settings().get("seed"));
            List<RunRecord> sameSeed = bySeed.getOrDefault(seed, List.of());
            double target = sameSeed.isEmpty() ? meanTarget : meanFinal(sameSeed);
            double refSeconds = sameSeed.isEmpty() ? meanRefSeconds : referenceSeconds(sameSeed, target);
            double refTrain = sameSeed.isEmpty() ? meanRefTrain : meanTrainSeconds(sameSeed);
            double evalTotal = 0;
            for (RunRecord.EvalRow e : r.evaluations()) {
                evalTotal += Double.isFinite(e.evalSeconds()) ? e.evalSeconds() : 0;
            }
            rows.add(new Row(run.label(), run.dir().toString(), seed, r.steps().isEmpty() ? 0 : r.steps().get(r.steps().size() - 1).step(),
                    r.endSeconds(), trainSeconds(r, r.endSeconds()), evalTotal, number(r.settings().get("calibration_seconds")),
                    r.evaluations().isEmpty() ? Double.NaN : r.evaluations().get(0).passAt1(), passEnd(r),
                    meanFinite(r.steps().stream().mapToDouble(RunRecord.StepRow::rolloutSeconds).toArray()),
                    meanFinite(r.steps().stream().mapToDouble(RunRecord.StepRow::tisTruncated).toArray()),
                    minAlpha(r), lastAlpha(r), target, secondsTo(r, target), refSeconds,
                    workerSeconds(r, "generation", "dense_reference", "scoring", "shadow"),
                    workerSeconds(r, "dense_reference", "scoring", "shadow"), number(r.summary().get("learner_seconds")), refTrain,
                    meanFinite(sameSeed.stream().mapToDouble(x -> passAtReferenceEnd(r, x)).toArray()),
                    meanFinite(sameSeed.stream().mapToDouble(x -> meanGapAtEqualSteps(r, x)).toArray())));
        }
        return rows;
    }

    /** The mean final pass@1 of reference runs of one seed (NaN: none has one). */
    private static double meanFinal(List<RunRecord> refs) {
        return meanFinite(refs.stream().mapToDouble(RunComparison::passEnd).toArray());
    }

    /** The mean whole train seconds of reference runs of one seed. */
    private static double meanTrainSeconds(List<RunRecord> refs) {
        return meanFinite(refs.stream().mapToDouble(x -> trainSeconds(x, x.endSeconds())).toArray());
    }

    /**
     * The reference's seconds to the target over the reference runs of one seed (one, or replicates):
     * the mean of each run's train seconds to it, a run that never reached it counting with its whole
     * train seconds (it took at least that long); NaN when the target is.
     */
    static double referenceSeconds(List<RunRecord> refs, double target) {
        if (Double.isNaN(target)) {
            return Double.NaN;
        }
        return meanFinite(refs.stream().mapToDouble(x -> {
            double t = secondsTo(x, target);
            return Double.isNaN(t) ? trainSeconds(x, x.endSeconds()) : t;
        }).toArray());
    }

    /** r's pass@1 at the step of ref's last evaluation (NaN: ref has no later evaluation than its start, or r none at that step). */
    static double passAtReferenceEnd(RunRecord r, RunRecord ref) {
        List<RunRecord.EvalRow> e = ref.evaluations();
        return e.size() < 2 ? Double.NaN : passAt(r, e.get(e.size() - 1).step());
    }

    /** The mean of r's pass@1 less ref's over the steps after the start that both evaluated (NaN: none). */
    static double meanGapAtEqualSteps(RunRecord r, RunRecord ref) {
        double sum = 0;
        int n = 0;
        for (RunRecord.EvalRow e : ref.evaluations()) {
            double mine = passAt(r, e.step());
            if (e.step() > 0 && !Double.isNaN(mine)) {
                sum += mine - e.passAt1();
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    /** r's pass@1 at its (last) evaluation of this step, NaN when it has none. */
    private static double passAt(RunRecord r, int step) {
        double p = Double.NaN;
        for (RunRecord.EvalRow e : r.evaluations()) {
            if (e.step() == step) {
                p = e.passAt1();
            }
        }
        return p;
    }

    /** The sum of these phases of the record's rollout_worker_seconds (NaN when it has none: an older record). */
    static double workerSeconds(RunRecord r, String... phases) {
        if (!(r.summary().get("rollout_worker_seconds") instanceof Map<?, ?> m)) {
            return Double.NaN;
        }
        double sum = 0;
        for (String p : phases) {
            double v = number(m.get(p));
            if (Double.isNaN(v)) {
                return Double.NaN;
            }
            sum += v;
        }
        return sum;
    }

    /** The last evaluation's pass@1 when there are at least two (the start and a later one), else NaN. */
    static double passEnd(RunRecord r) {
        List<RunRecord.EvalRow> e = r.evaluations();
        return e.size() < 2 ? Double.NaN : e.get(e.size() - 1).passAt1();
    }

    /**
     * Wall seconds t less the held-out evaluations before it: each evaluation that began before t
     * counts for its duration, or up to t if it was still running.
     */
    static double trainSeconds(RunRecord r, double t) {
        double excluded = 0;
        for (RunRecord.EvalRow e : r.evaluations()) {
            if (e.seconds() < t && Double.isFinite(e.evalSeconds())) {
                excluded += Math.min(e.evalSeconds(), t - e.seconds());
            }
        }
        return t - excluded;
    }

    /** Train seconds at the first evaluation whose pass@1 is at least target; NaN when none is (or the target is NaN). */
    static double secondsTo(RunRecord r, double target) {
        if (Double.isNaN(target)) {
            return Double.NaN;
        }
        for (RunRecord.EvalRow e : r.evaluations()) {
            if (e.passAt1() >= target) {
                return trainSeconds(r, e.seconds());
            }
        }
        return Double.NaN;
    }

    static int bins(RunRecord r) {
        int n = 0;
        for (RunRecord.WindowRow w : r.windows()) {
            n = Math.max(n, w.alphaP5().length);
        }
        return n;
    }

    /**
     * The p5 α the controller judged bin b on at a window (its kept windows merged) when it counts,
     * else NaN: it counts when that evidence had at least the run's min-tokens tokens (settings
     * min_tokens; without it, any), as tail_in_band_fraction counts. A p5 over a handful of tokens
     * says little about the tail.
     */
    static double alpha(RunRecord r, RunRecord.WindowRow w, int b) {
        double min = number(r.settings().get("min_tokens"));
        double a = w.judgedP5()[b];
        return Double.isNaN(a) || (Double.isFinite(min) && w.judgedTokens()[b] < min) ? Double.NaN : a;
    }

    /** Per bin, the lowest window p5 α of the run among the windows that count (NaN: none does). */
    static double[] minAlpha(RunRecord r) {
        double[] m = new double[bins(r)];
        java.util.Arrays.fill(m, Double.NaN);
        for (RunRecord.WindowRow w : r.windows()) {
            for (int b = 0; b < w.alphaP5().length; b++) {
                double a = alpha(r, w, b);
                if (!Double.isNaN(a) && !(a >= m[b])) {
                    m[b] = a;
                }
            }
        }
        return m;
    }

    /** Per bin, the p5 α of the last window that counts (NaN: none does). */
    static double[] lastAlpha(RunRecord r) {
        double[] m = new double[bins(r)];
        java.util.Arrays.fill(m, Double.NaN);
        for (RunRecord.WindowRow w : r.windows()) {
            for (int b = 0; b < w.alphaP5().length; b++) {
                double a = alpha(r, w, b);
                if (!Double.isNaN(a)) {
                    m[b] = a;
                }
            }
        }
        return m;
    }

    static double meanFinite(double[] xs) {
        double sum = 0;
        int n = 0;
        for (double x : xs) {
            if (Double.isFinite(x)) {
                sum += x;
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    private static double number(Object o) {
        return o instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    // ---------------------------------------------------------------- table

    static String table(List<Row> rows, String reference, List<Path> plots) {
        StringBuilder t = new StringBuilder();
        t.append("| arm | seed | run | steps | wall s | train s | eval s | calibration s | pass@1 start | pass@1 end | rollout s/step"
                + " | rollout worker s (guard) | learner s | TIS truncated | min p5 α per bin | last p5 α per bin | target pass@1"
                + " | train s to target | × ").append(reference).append(" | × ").append(reference).append(" run")
                .append(" | pass@1 at ").append(reference).append("'s last step | mean gap at equal steps |\n");
        t.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        Set<String> arms = new LinkedHashSet<>();
        for (Row r : rows) {
            arms.add(r.label());
            t.append(row(r.label(), fmt(r.seed(), 0), r.dir(), String.valueOf(r.steps()), r));
        }
        for (String arm : arms) {
            List<Row> of = rows.stream().filter(r -> r.label().equals(arm)).toList();
            if (of.size() < 2) {
                continue;
            }
            Row mean = new Row(arm, "", Double.NaN, 0, mean(of, Row::wallSeconds), mean(of, Row::trainSeconds), mean(of, Row::evalSeconds),
                    mean(of, Row::calibrationSeconds), mean(of, Row::passStart), mean(of, Row::passEnd),
                    mean(of, Row::meanRolloutSeconds), mean(of, Row::meanTisTruncated), new double[0], new double[0],
                    mean(of, Row::target), everyOrNaN(of, Row::secondsToTarget), mean(of, Row::referenceSeconds),
                    mean(of, Row::workerSeconds), mean(of, Row::guardSeconds), mean(of, Row::learnerSeconds),
                    mean(of, Row::referenceTrainSeconds), mean(of, Row::passAtReferenceEnd), mean(of, Row::meanGapAtEqualSteps));
            t.append(row(arm, "mean of " + of.size(), "", fmt(mean(of, r -> r.steps()), 1), mean));
        }
        t.append('\n');
        t.append("Seconds are wall seconds since `train` began, calibration included; train s leaves out the held-out ")
                .append("evaluations. rollout s/step: the generation seconds of a step's tokens at its batch's rollout rate. ")
                .append("rollout worker s: the workers' seconds in all, and in brackets the part the guard and the in-run speedup ")
                .append("spend (dense reference, α scoring, shadow replays); learner s: the learner's. ")
                .append("p5 α per bin: what the controller judged the bin on at each window (its kept windows merged), where that had at least min-tokens tokens. ")
                .append("Target: the final pass@1 of the ").append(reference).append(" run with the same seed (else the mean over ")
                .append(reference).append("'s seeds); × ").append(reference).append(": train seconds to it over that ")
                .append(reference).append(" run's own; × ").append(reference).append(" run: over that run's whole train seconds. ")
                .append("Several ").append(reference).append(" runs of one seed (replicates: other sampling seeds) count by their means, ")
                .append("a replicate that never reached the target with its whole train seconds (its own row then shows –). ")
                .append("A mean row's time to target needs every run of the arm to have reached it. ")
                .append("At equal steps: pass@1 at the last step the ").append(reference)
                .append(" run with the same seed evaluated, and the mean of this run's pass@1 less that run's over the steps after ")
                .append("the start both evaluated (an arm that ran more steps is compared on the steps they share; against ")
                .append("replicates, the means over them, so a reference replicate's own gap is its distance from their mean). ")
                .append("–: nothing to compute (never reached, no tokens, no update).\n");
        if (!plots.isEmpty()) {
            t.append('\n');
            for (Path p : plots) {
                t.append("![").append(p.getFileName()).append("](").append(p.getFileName()).append(")\n");
            }
        }
        return t.toString();
    }

    private static String row(String arm, String seed, String dir, String steps, Row r) {
        double ratio = r.ratioToReference();
        return "| " + String.join(" | ", arm, seed, dir, steps, fmt(r.wallSeconds(), 1), fmt(r.trainSeconds(), 1), fmt(r.evalSeconds(), 1),
                fmt(r.calibrationSeconds(), 1), fmt(r.passStart(), 3), fmt(r.passEnd(), 3), fmt(r.meanRolloutSeconds(), 3),
                fmt(r.workerSeconds(), 1) + " (" + fmt(r.guardSeconds(), 1) + ")", fmt(r.learnerSeconds(), 1),
                fmt(r.meanTisTruncated(), 4), bins(r.minAlphaP5()), bins(r.lastAlphaP5()), fmt(r.target(), 3),
                fmt(r.secondsToTarget(), 1), fmt(ratio, 2), fmt(r.ratioToReferenceRun(), 2), fmt(r.passAtReferenceEnd(), 3),
                signed(r.meanGapAtEqualSteps())) + " |\n";
    }

    private static double mean(List<Row> rows, java.util.function.ToDoubleFunction<Row> f) {
        return meanFinite(rows.stream().mapToDouble(f).toArray());
    }

    /**
     * The mean where every row has a value, else NaN: a mean time to target over the runs that reached
     * it would hide the ones that never did.
     */
    private static double everyOrNaN(List<Row> rows, java.util.function.ToDoubleFunction<Row> f) {
        double[] xs = rows.stream().mapToDouble(f).toArray();
        for (double x : xs) {
            if (!Double.isFinite(x)) {
                return Double.NaN;
            }
        }
        return meanFinite(xs);
    }

    static String fmt(double v, int decimals) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + decimals + "f", v) : "–";
    }

    /** A difference of pass rates with its sign, e.g. +0.016 or −0.078 ("–" when NaN). */
    static String signed(double v) {
        return Double.isFinite(v) ? (v >= 0 ? "+" : "−") + fmt(Math.abs(v), 3) : "–";
    }

    private static String bins(double[] a) {
        if (a.length == 0) {
            return "";
        }
        StringBuilder b = new StringBuilder();
        for (double x : a) {
            b.append(b.length() == 0 ? "" : " ").append(fmt(x, 2));
        }
        return b.toString();
    }

    private static double round(double v, int decimals) {
        if (!Double.isFinite(v)) {
            return v;
        }
        double f = Math.pow(10, decimals);
        return Math.round(v * f) / f;
    }

    private static List<Double> rounded(double[] a) {
        List<Double> out = new ArrayList<>();
        for (double x : a) {
            out.add(round(x, 3));
        }
        return out;
    }

    // ---------------------------------------------------------------- plots

    private static String name(Run r, int i, List<Run> all) {
        long same = all.stream().filter(x -> x.label().equals(r.label())).count();
        Object seed = r.record().settings().get("seed");
        String s = seed instanceof Number n ? String.valueOf(n.longValue()) : String.valueOf(i + 1);
        return same > 1 ? r.label() + " seed " + s : r.label();
    }

    /** A series' colour and whether it is dashed: one colour per arm, a dash pattern per seed; τ grey and dashed. */
    record Style(java.awt.Color color, int dash) {
        static final Style TAU = new Style(java.awt.Color.GRAY, 1);
    }

    private static final java.awt.Color[] ARM_COLOURS = {new java.awt.Color(0x1f, 0x77, 0xb4), new java.awt.Color(0x2c, 0xa0, 0x2c),
            new java.awt.Color(0xd6, 0x27, 0x28), new java.awt.Color(0x94, 0x67, 0xbd), new java.awt.Color(0xff, 0x7f, 0x0e),
            new java.awt.Color(0x8c, 0x56, 0x4b)};

    /** Each run's style: its arm's colour (arms in order of first appearance), its place among the arm's runs as the dash. */
    static List<Style> styles(List<Run> runs) {
        List<String> arms = new ArrayList<>();
        List<Style> out = new ArrayList<>();
        Map<String, Integer> seen = new java.util.HashMap<>();
        for (Run r : runs) {
            if (!arms.contains(r.label())) {
                arms.add(r.label());
            }
            int k = seen.merge(r.label(), 1, Integer::sum) - 1;
            out.add(new Style(ARM_COLOURS[arms.indexOf(r.label()) % ARM_COLOURS.length], k));
        }
        return out;
    }

    static List<Path> plots(List<Run> runs, Path out) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<Path> written = new ArrayList<>();
        List<XYSeries> passSteps = new ArrayList<>();
        List<XYSeries> passSeconds = new ArrayList<>();
        List<XYSeries> reward = new ArrayList<>();
        List<XYSeries> rollout = new ArrayList<>();
        List<XYSeries> tis = new ArrayList<>();
        List<XYSeries> alphaMin = new ArrayList<>();
        Set<Double> taus = new TreeSet<>();
        double end = 0;
        Set<String> names = new java.util.HashSet<>();
        for (int i = 0; i < runs.size(); i++) {
            Run run = runs.get(i);
            RunRecord r = run.record();
            String n = name(run, i, runs);
            if (!names.add(n)) {
                n = n + " #" + (i + 1); // a chart's series need distinct names
                names.add(n);
            }
            XYSeries ps = new XYSeries(n, false, true);
            XYSeries pt = new XYSeries(n, false, true);
            for (RunRecord.EvalRow e : r.evaluations()) {
                ps.add(e.step(), e.passAt1());
                pt.add(trainSeconds(r, e.seconds()), e.passAt1());
            }
            passSteps.add(ps);
            passSeconds.add(pt);
            XYSeries rw = new XYSeries(n, false, true);
            XYSeries ro = new XYSeries(n, false, true);
            XYSeries tr = new XYSeries(n, false, true);
            for (RunRecord.StepRow s : r.steps()) {
                addFinite(rw, s.step(), s.reward());
                addFinite(ro, s.step(), s.rolloutSeconds());
                addFinite(tr, s.step(), s.tisTruncated());
            }
            reward.add(rw);
            rollout.add(ro);
            tis.add(tr);
            XYSeries am = new XYSeries(n, false, true);
            int bins = bins(r);
            XYSeries[] perBin = new XYSeries[bins + 1];
            for (int b = 0; b < bins; b++) {
                perBin[b] = new XYSeries("bin " + b, false, true);
            }
            perBin[bins] = new XYSeries("τ", false, true);
            for (RunRecord.WindowRow w : r.windows()) {
                double t = trainSeconds(r, w.seconds());
                end = Math.max(end, t);
                double lo = Double.NaN;
                for (int b = 0; b < w.alphaP5().length; b++) {
                    double a = alpha(r, w, b);
                    if (!Double.isNaN(a)) {
                        perBin[b].add(t, a);
                        lo = Double.isNaN(lo) ? a : Math.min(lo, a);
                    }
                }
                addFinite(am, t, lo);
                if (Double.isFinite(w.tau())) {
                    perBin[bins].add(t, w.tau());
                    taus.add(w.tau());
                }
            }
            alphaMin.add(am);
            List<Style> binStyles = new ArrayList<>(java.util.Collections.nCopies(bins, (Style) null));
            binStyles.add(Style.TAU);
            written.add(save(out.resolve(String.format(Locale.ROOT, "alpha-%d-%s.png", i + 1, slug(n))),
                    "p5 α per position bin: " + n, "train seconds", "p5 α", List.of(perBin), binStyles));
        }
        for (double tau : taus) {
            XYSeries t = new XYSeries(taus.size() == 1 ? "τ" : "τ = " + tau, false, true);
            t.add(0, tau);
            t.add(Math.max(end, 1), tau);
            alphaMin.add(t);
        }
        List<Style> st = styles(runs);
        List<Style> withTau = new ArrayList<>(st);
        taus.forEach(t -> withTau.add(Style.TAU));
        List<Path> shared = new ArrayList<>();
        shared.add(save(out.resolve("pass_at_1_steps.png"), "Held-out pass@1 against learner steps", "step", "pass@1", passSteps, st));
        shared.add(save(out.resolve("pass_at_1_seconds.png"), "Held-out pass@1 against wall seconds (held-out evaluations left out)",
                "train seconds", "pass@1", passSeconds, st));
        shared.add(save(out.resolve("reward.png"), "Mean reward per step", "step", "reward", reward, st));
        shared.add(save(out.resolve("rollout_seconds.png"), "Rollout seconds per step", "step", "seconds", rollout, st));
        shared.add(save(out.resolve("tis_truncation.png"), "TIS truncation per step", "step", "share of tokens truncated", tis, st));
        shared.add(save(out.resolve("alpha_min.png"), "Lowest p5 α over the position bins per window", "train seconds", "p5 α",
                alphaMin, withTau));
        shared.addAll(written);
        return shared;
    }

    private static void addFinite(XYSeries s, double x, double y) {
        if (Double.isFinite(x) && Double.isFinite(y)) {
            s.add(x, y);
        }
    }

    private static String slug(String s) {
        return s.replaceAll("[^A-Za-z0-9._-]+", "-");
    }

    /**
     * One line chart on white, written to a temporary sibling and moved into place; styles[i] (null:
     * the default palette) colours and dashes series i.
     */
    private static Path save(Path file, String title, String x, String y, List<XYSeries> series, List<Style> styles) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection();
        for (XYSeries s : series) {
            data.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, x, y, data, PlotOrientation.VERTICAL, true, false, false);
        org.jfree.chart.plot.XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(java.awt.Color.WHITE);
        plot.setDomainGridlinePaint(java.awt.Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(java.awt.Color.LIGHT_GRAY);
        var renderer = plot.getRenderer();
        for (int i = 0; i < series.size(); i++) {
            Style st = i < styles.size() ? styles.get(i) : null;
            float[] dash = st == null || st.dash() == 0 ? null : st.dash() == 1 ? new float[] {6f, 4f} : new float[] {2f, 3f + st.dash()};
            renderer.setSeriesStroke(i, new java.awt.BasicStroke(2f, java.awt.BasicStroke.CAP_BUTT, java.awt.BasicStroke.JOIN_ROUND, 1f,
                    dash, 0f));
            if (st != null) {
                renderer.setSeriesPaint(i, st.color());
            }
        }
        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), "." + file.getFileName(), ".tmp");
        try {
            ChartUtils.saveChartAsPNG(new File(tmp.toString()), chart, 900, 500);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return file;
    }
}
