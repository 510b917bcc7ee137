package io.tailguard.actors.runtime;

import io.tailguard.recipes.RolloutSpeedup;
import io.tailguard.rollout.sparse.Schedule;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The figures a `train` run ends with (docs/reference.md, train), from what its recorder saw: pass@1
 * at the start and the end, the controller's final schedule with its version and its cost model's
 * predicted speedup, the share of tails in band, the rollout time ({@link RolloutTimes}), and the
 * rollout speedup: measured inside the run (source {@value #IN_RUN}) when a lease measured it, else
 * timed at the end with the last policy under the final schedule (source {@value #END_OF_RUN}).
 * A compare schedule is timed at the end beside the final one, in the same rounds
 * (compareSpeedup, and speedupVsCompare: the final schedule's end-of-run speedup over the compare
 * schedule's). NaN where there is nothing to measure.
 */
public record RunFigures(double passAt1Start, double passAt1End, Schedule finalSchedule, long scheduleVersions,
                         double predictedSpeedup, double tailInBandFraction, double rolloutSpeedup, double compareSpeedup,
                         String rolloutSpeedupSource, RolloutTimes rollout, double speedupVsCompare,
                         double tailAtFloorFraction, double tailBySequenceFraction) {
    /** A bin's window p5 α is in band when it lies in [τ − BELOW, τ + ABOVE]. */
    static final double BAND_BELOW = 0.03;
    static final double BAND_ABOVE = 0.05;
    /** rolloutSpeedupSource: measured by the leases of the run. */
    public static final String IN_RUN = "in-run";
    /** rolloutSpeedupSource: timed after the run with the last policy (no lease measured it). */
    public static final String END_OF_RUN = "end-of-run";

    /**
     * @param startSchedule the schedule the controller started from ({@link TailguardNode#startSchedule}),
     *                      whose dense layers it keeps in every schedule it makes
     * @param compare       a schedule to time beside the final one, or null
     * @param lastPolicy    the last policy's directory; the end-of-run speedups are NaN when it is not there
     */
    public static RunFigures of(RunRecorder recorder, RunSettings s, Schedule startSchedule, Schedule compare, Path lastPolicy) {
        List<RunObserver.Window> windows = recorder.windows();
        RunObserver.Window last = windows.isEmpty() ? null : windows.get(windows.size() - 1);
        Schedule fin = finalSchedule(last, s.controller().binWidth(), startSchedule.denseLayers());
        RolloutTimes times = RolloutTimes.of(recorder.rollouts());
        boolean inRun = times.measurements() > 0;
        // the end-of-run timing only where it is needed: no lease measured, or a compare schedule to time
        double[] speedups = (!inRun || compare != null) && Files.isDirectory(lastPolicy)
                ? RolloutSpeedup.measure(lastPolicy, s.train().task(), s.train().contextMin(), s.train().contextMax(),
                        s.rollout().promptsPerLease(), s.rollout().groupSize(), s.train().seed(),
                        compare == null ? List.of(fin) : List.of(fin, compare))
                : new double[] {Double.NaN, Double.NaN};
        List<RunObserver.Evaluated> evals = recorder.evaluations();
        double compareSpeedup = compare == null ? Double.NaN : speedups[1];
        return new RunFigures(evals.isEmpty() ? Double.NaN : evals.get(0).passAt1(),
                evals.size() < 2 ? Double.NaN : evals.get(evals.size() - 1).passAt1(),
                fin, last == null ? 1 : last.scheduleVersion(), last == null ? Double.NaN : last.predictedSpeedup(),
                tailInBandFraction(recorder, windows.size(), s.controller(), RunRecorder.Held.ALL),
                inRun ? times.speedup() : speedups[0], compareSpeedup, inRun ? IN_RUN : END_OF_RUN, times,
                speedups[0] / compareSpeedup,
                tailInBandFraction(recorder, windows.size(), s.controller(), RunRecorder.Held.AT_FLOOR),
                tailInBandFraction(recorder, windows.size(), s.controller(), RunRecorder.Held.BY_SEQUENCE));
    }

    /**
     * The controller's last schedule: the last window's budgets at the bin width, with the start
     * schedule's dense layers; dense when no window closed.
     */
    static Schedule finalSchedule(RunObserver.Window last, int binWidth, Set<Integer> denseLayers) {
        return last == null ? Schedule.dense() : Schedule.ofBins(binWidth, last.budgets()).withDenseLayers(denseLayers);
    }

    /**
     * The share of (window, bin) pairs in band ({@link RunRecorder#inBandFraction}) after the first
     * fifth of the windows (at least the first one), counting bins with at least minTokens tokens; a
     * pair above the band whose bin's budget is minBudget counts as held. With {@code atFloorOnly},
     * the share of such pairs.
     */
    static double tailInBandFraction(RunRecorder recorder, int windows, long minTokens, int minBudget, boolean atFloorOnly) {
        return recorder.inBandFraction(Math.max(1, windows / 5), BAND_BELOW, BAND_ABOVE, minTokens, minBudget, atFloorOnly);
    }

    /**
     * As above with the controller's settings, the sequence guard's clause included (a pair above the
     * band in a window whose sequence α is in its own band counts as held: {@link RunRecorder#inBandFraction}).
     */
    static double tailInBandFraction(RunRecorder recorder, int windows, io.tailguard.rollout.sparse.BudgetController.Settings c,
                                     RunRecorder.Held held) {
        return recorder.inBandFraction(Math.max(1, windows / 5), BAND_BELOW, BAND_ABOVE, c.minTokens(), c.minBudget(),
                c.sequenceTau(), held);
    }
}
