package io.tailguard.actors.runtime;

import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The run's report directory: report.html with the summary and every schedule change, and PNG
 * plots (reward and pass rate; p5 α per bin over time with τ; budget per bin over time;
 * throughput). When a compressed version was offered as a rollout option, also its p5 α per bin
 * with τ and whether it was in use (compressed.png), and every change of the option in use. When
 * leases reported their rollout time, rollout.png (seconds per decode step, dense vs the live
 * schedule) and speedup.png (the speedup measured in the run over time, with the cost model's).
 * Written into a temporary sibling and moved into place.
 */
public final class RunReport {
    private RunReport() {
    }

    public static Path write(Path dir, RunRecorder r, Map<String, Object> summary) {
        System.setProperty("java.awt.headless", "true");
        Path tmp = dir.resolveSibling(dir.getFileName() + ".tmp");
        try {
            deleteTree(tmp);
            Files.createDirectories(tmp);
            List<RunObserver.Step> steps = r.steps();
            List<RunObserver.Window> windows = r.windows();
            long t0 = windows.isEmpty() ? (steps.isEmpty() ? 0 : steps.get(0).timeMillis()) : windows.get(0).timeMillis();

            XYSeries reward = new XYSeries("mean reward");
            XYSeries pass = new XYSeries("pass rate (samples)");
            XYSeries rollout = new XYSeries("rollout tokens/s");
            XYSeries learn = new XYSeries("learner tokens/s");
            for (RunObserver.Step s : steps) {
                reward.add(s.step(), s.reward());
                pass.add(s.step(), s.passRate());
                rollout.add(s.step(), s.rolloutTokensPerSecond());
                learn.add(s.step(), s.tokens() / Math.max(1e-9, s.learnSeconds()));
            }
            XYSeries heldOut = new XYSeries("held-out greedy pass@1");
            for (RunObserver.Evaluated e : r.evaluations()) {
                heldOut.add(e.step(), e.passAt1());
            }
            save(tmp.resolve("reward.png"), "Reward and pass rate", "step", "", reward, pass, heldOut);
            save(tmp.resolve("throughput.png"), "Throughput", "step", "tokens/s", rollout, learn);

            int bins = windows.isEmpty() ? 0 : windows.get(windows.size() - 1).budgets().length;
            XYSeries[] alpha = new XYSeries[bins + 2];
            XYSeries[] budget = new XYSeries[bins];
            for (int b = 0; b < bins; b++) {
                alpha[b] = new XYSeries("bin " + b);
                budget[b] = new XYSeries("bin " + b);
            }
            alpha[bins] = new XYSeries("τ");
            alpha[bins + 1] = new XYSeries("sequence α (option in use, kept windows)");
            for (RunObserver.Window w : windows) {
                double t = (w.timeMillis() - t0) / 1000.0;
                for (int b = 0; b < Math.min(bins, w.budgets().length); b++) {
                    if (!Double.isNaN(w.alphaP5()[b])) {
                        alpha[b].add(t, w.alphaP5()[b]);
                    }
                    budget[b].add(t, w.budgets()[b]);
                }
                alpha[bins].add(t, w.tau());
                if (!Double.isNaN(w.sequenceAlpha())) {
                    alpha[bins + 1].add(t, w.sequenceAlpha());
                }
            }
            save(tmp.resolve("alpha.png"), "p5 of α per position bin, and the sequence α", "seconds", "α", alpha);
            save(tmp.resolve("budget.png"), "KV budget per position bin", "seconds", "tokens", budget);
            boolean compressed = r.compressedSummary() != null;
            if (compressed) {
                XYSeries[] cp5 = new XYSeries[bins + 2];
                for (int b = 0; b < bins; b++) {
                    cp5[b] = new XYSeries("bin " + b);
                }
                cp5[bins] = new XYSeries("τ");
                cp5[bins + 1] = new XYSeries("compressed in use (1) or probed (0)");
                for (RunObserver.Window w : windows) {
                    RunObserver.OptionWindow o = w.option();
                    if (o == null || o.compressedVersion() < 0) {
                        continue;
                    }
                    double t = (w.timeMillis() - t0) / 1000.0;
                    for (int b = 0; b < Math.min(bins, o.compressedP5().length); b++) {
                        if (!Double.isNaN(o.compressedP5()[b])) {
                            cp5[b].add(t, o.compressedP5()[b]);
                        }
                    }
                    cp5[bins].add(t, w.tau());
                    cp5[bins + 1].add(t, o.compressedInUse() ? 1 : 0);
                }
                save(tmp.resolve("compressed.png"), "Compressed rollout option: p5 of α per position bin", "seconds", "p5 α", cp5);
            }

            boolean rolloutPlots = rolloutPlots(tmp, r.rollouts(), t0);

            StringBuilder h = new StringBuilder();
            h.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Tailguard run</title>")
             .append("<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}td,th{padding:2px 8px;text-align:left}</style>")
             .append("</head><body><h1>Tailguard run</h1><table>");
            for (Map.Entry<String, Object> e : summary.entrySet()) {
                h.append("<tr><th>").append(esc(e.getKey())).append("</th><td>").append(esc(display(e.getValue()))).append("</td></tr>");
            }
            h.append("</table>");
            for (String png : compressed ? List.of("reward", "alpha", "budget", "compressed", "throughput")
                    : List.of("reward", "alpha", "budget", "throughput")) {
                h.append("<h2>").append(png).append("</h2><img src=\"").append(png).append(".png\" width=\"800\">");
            }
            if (rolloutPlots) {
                h.append("<h2>rollout time</h2><p>Every ").append(ROLLOUT_NOTE).append("</p>");
                for (String png : List.of("rollout", "speedup")) {
                    h.append("<h2>").append(png).append("</h2><img src=\"").append(png).append(".png\" width=\"800\">");
                }
            }
            h.append("<h2>Schedule changes</h2><ul>");
            for (RunObserver.Window w : windows) {
                for (String c : w.changes()) {
                    h.append(String.format(Locale.ROOT, "<li>t=%.0fs v%d: %s</li>", (w.timeMillis() - t0) / 1000.0, w.scheduleVersion(), esc(c)));
                }
            }
            h.append("</ul>");
            if (windows.stream().anyMatch(w -> w.option() != null && w.option().change() != null)) {
                h.append("<h2>Rollout option changes</h2><ul>");
                for (RunObserver.Window w : windows) {
                    if (w.option() != null && w.option().change() != null) {
                        h.append(String.format(Locale.ROOT, "<li>t=%.0fs: %s</li>", (w.timeMillis() - t0) / 1000.0, esc(w.option().change())));
                    }
                }
                h.append("</ul>");
            }
            h.append("</body></html>\n");
            Files.writeString(tmp.resolve("report.html"), h.toString(), StandardCharsets.UTF_8);
            deleteTree(dir);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("report " + dir + ": " + e.getMessage(), e);
        }
    }

    static final String ROLLOUT_NOTE = "lease's decode seconds per decode step under the live schedule (sampling included); "
            + "at the leases that measured the speedup, the same tokens decoded in lockstep under the live schedule and "
            + "densely, alternating step by step, each mode's decode steps alone; the speedup is dense over live, beside the "
            + "cost model's prediction for the same steps (tailguard.rollout.speedup-every).";

    /**
     * rollout.png (seconds per decode step over time: every lease's under the live schedule, and
     * the measured leases' live and dense steps) and speedup.png (each measurement, the run's so
     * far, and the cost model's for the same steps). False, and nothing written, without leases.
     */
    static boolean rolloutPlots(Path dir, List<RunObserver.Rollout> rollouts, long t0) throws IOException {
        if (rollouts.isEmpty()) {
            return false;
        }
        XYSeries lease = new XYSeries("live schedule, every lease (decode loop with sampling)");
        XYSeries live = new XYSeries("live schedule, measured leases (decode steps alone)");
        XYSeries dense = new XYSeries("dense, measured leases (the same tokens, in lockstep)");
        XYSeries measured = new XYSeries("measured speedup (lease)");
        XYSeries cumulative = new XYSeries("measured speedup (run so far)");
        XYSeries predicted = new XYSeries("cost model's speedup (same decode steps)");
        double denseSum = 0;
        double liveSum = 0;
        for (RunObserver.Rollout ro : rollouts) {
            if (ro.decodeSteps() <= 0) {
                continue;
            }
            double t = (ro.timeMillis() - t0) / 1000.0;
            lease.add(t, ro.decodeSeconds() / ro.decodeSteps());
            if (ro.measured()) {
                live.add(t, ro.liveStepSeconds() / ro.decodeSteps());
                dense.add(t, ro.denseStepSeconds() / ro.decodeSteps());
                denseSum += ro.denseStepSeconds();
                liveSum += ro.liveStepSeconds();
                measured.add(t, ro.speedup());
                cumulative.add(t, denseSum / liveSum);
                predicted.add(t, ro.predictedSpeedup());
            }
        }
        save(dir.resolve("rollout.png"), "Rollout seconds per decode step, dense vs live schedule", "seconds", "seconds per step",
                lease, live, dense);
        save(dir.resolve("speedup.png"), "Measured rollout speedup over time, with the cost model's prediction", "seconds",
                "dense / live decode time", measured, cumulative, predicted);
        return true;
    }

    private static void save(Path file, String title, String x, String y, XYSeries... series) throws IOException {
        XYSeriesCollection data = new XYSeriesCollection();
        for (XYSeries s : series) {
            data.addSeries(s);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, x, y, data, PlotOrientation.VERTICAL, true, false, false);
        ChartUtils.saveChartAsPNG(new File(file.toString()), chart, 800, 450);
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            for (Path q : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }

    /**
     * A summary value as the report shows it: arrays and collections element by element (an array's
     * own toString is its type and hash, as in "[I@7f0b93b4"), maps as {key=value, ...}, nested
     * values the same way, anything else as itself.
     */
    static String display(Object v) {
        if (v instanceof int[] a) {
            return java.util.Arrays.toString(a);
        }
        if (v instanceof long[] a) {
            return java.util.Arrays.toString(a);
        }
        if (v instanceof double[] a) {
            return java.util.Arrays.toString(a);
        }
        if (v instanceof float[] a) {
            return java.util.Arrays.toString(a);
        }
        if (v instanceof Object[] a) {
            return display(java.util.Arrays.asList(a));
        }
        if (v instanceof java.util.Collection<?> c) {
            StringBuilder b = new StringBuilder("[");
            for (Object x : c) {
                b.append(b.length() > 1 ? ", " : "").append(display(x));
            }
            return b.append(']').toString();
        }
        if (v instanceof Map<?, ?> m) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> x : m.entrySet()) {
                b.append(b.length() > 1 ? ", " : "").append(x.getKey()).append('=').append(display(x.getValue()));
            }
            return b.append('}').toString();
        }
        return String.valueOf(v);
    }
}
