package io.tailguard.rollout.sparse;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SortedSet;

import static io.tailguard.model.KvCache.PAGE;

/**
 * The online, tail-driven sparsity controller (docs/algorithms.md, "The online budget controller";
 * docs/architecture.md for where it runs), as a plain state machine the controller actor drives.
 *
 * <p>Each position bin has a budget taken from a ladder: page multiples from {@code minBudget}
 * growing by about {@code ladderRatio} per rung, capped by {@code maxBudget}, with the bin's end
 * (attend over everything the bin can hold: dense within the bin) as the top rung. Workers report
 * α tails per bin for the budgets they rolled out under, and shadow tails for the rung just below
 * (the same tokens replayed one rung cheaper). Reports accumulate into the current window;
 * {@link #tick} closes the window and decides, per bin, with at least {@code minTokens} tokens at the
 * budget in question over the last {@code keepWindows} windows:
 * <ul>
 *   <li>raise one rung when the bin's p5 α at its budget is below τ − margin;</li>
 *   <li>else lower one rung when the shadow p5 α one rung lower is at least τ + hysteresis, and the
 *       lower budget keeps budgets non-decreasing in position;</li>
 * </ul>
 * with the sequence guard on (sequence-τ above 0; docs/algorithms.md, "The sequence α"), a lowering
 * must also keep the predicted sequence α at sequence-τ + hysteresis or above, and when the judged
 * sequence α falls below sequence-τ − margin with no bin raised by its own tail, the bin holding the
 * largest share of it goes one rung up;
 * then the one repair of {@link Budgets#makeNonDecreasing}, with idle bins (no rollout tokens over
 * the kept windows: no evidence either way) as its unreached bins: an idle bin follows the next bin
 * down, so a bin the workload never reaches (short positions under long prompts) does not pin the
 * bins after it; then a raise carries over to later bins (budgets never decrease with position).
 * Moves land on ladder rungs. Every change is a new schedule version with a reason per changed bin.
 * Starting point: a calibrated schedule, mapped onto the ladder (the cheapest rung at least as
 * large), or dense (the top rung everywhere); its dense layers are those of every schedule the
 * controller makes.
 */
public final class BudgetController {

    public record Settings(double tau, double margin, double hysteresis, long minTokens, int keepWindows,
                           int minBudget, int maxBudget, double ladderRatio, int binWidth, int maxContext,
                           double sequenceTau, long minSequences) {
        /** Without the sequence guard (sequence-τ 0; min-sequences at its default, 32). */
        public Settings(double tau, double margin, double hysteresis, long minTokens, int keepWindows,
                        int minBudget, int maxBudget, double ladderRatio, int binWidth, int maxContext) {
            this(tau, margin, hysteresis, minTokens, keepWindows, minBudget, maxBudget, ladderRatio, binWidth, maxContext, 0, 32);
        }

        public Settings {
            if (!(tau > 0 && tau < 1)) {
                throw new IllegalArgumentException("tau: must be in (0, 1), got " + tau);
            }
            if (!(margin >= 0 && margin < tau)) {
                throw new IllegalArgumentException("margin: must be in [0, tau), got " + margin);
            }
            if (!(hysteresis >= 0 && tau + hysteresis <= 1)) {
                throw new IllegalArgumentException("hysteresis: must be >= 0 with tau + hysteresis <= 1, got " + hysteresis);
            }
            if (minTokens < 1) {
                throw new IllegalArgumentException("min-tokens: must be >= 1, got " + minTokens);
            }
            if (keepWindows < 1) {
                throw new IllegalArgumentException("keep-windows: must be >= 1, got " + keepWindows);
            }
            if (!Budgets.valid(minBudget)) {
                throw new IllegalArgumentException("min-budget: must be a multiple of " + PAGE + " and >= "
                        + Budgets.MIN_BUDGET + ", got " + minBudget);
            }
            if (!Budgets.valid(maxBudget) || maxBudget < minBudget) {
                throw new IllegalArgumentException("max-budget: must be a multiple of " + PAGE + " and >= min-budget "
                        + minBudget + ", got " + maxBudget);
            }
            if (!(ladderRatio > 1 && ladderRatio <= 4)) {
                throw new IllegalArgumentException("ladder-ratio: must be in (1, 4], got " + ladderRatio);
            }
            if (!Budgets.validBinWidth(binWidth)) {
                throw new IllegalArgumentException("bin-width: must be " + Budgets.BIN_WIDTH_RULE + ", got " + binWidth);
            }
            if (maxContext < 1) {
                throw new IllegalArgumentException("max-context: must be >= 1, got " + maxContext);
            }
            if (!(sequenceTau == 0 || (sequenceTau > margin && sequenceTau + hysteresis <= 1))) {
                throw new IllegalArgumentException("sequence-tau: must be 0 (off) or in (margin, 1 − hysteresis], got " + sequenceTau);
            }
            if (minSequences < 1) {
                throw new IllegalArgumentException("min-sequences: must be >= 1, got " + minSequences);
            }
        }

        /** Whether the sequence guard is on. */
        public boolean sequenceGuard() {
            return sequenceTau > 0;
        }

        public int bins() {
            return (maxContext + binWidth - 1) / binWidth;
        }
    }

    /** One bin's budget change: why, and the evidence. */
    public record Change(int bin, int from, int to, String reason) {}

    /**
     * A tick's outcome: the schedule after it (a new version when anything changed) and the changes,
     * the closed window's tails, and per bin the p5 α and tokens over the kept windows at the budget
     * the window ran under (before any change; NaN and 0 where none), and the sequence α at those
     * budgets ({@link #sequenceAlpha()}; NaN when not judged): what the tick judged.
     */
    public record Decision(Schedule schedule, List<Change> changes, List<WindowTail> window, double[] p5, long[] tokens,
                           double sequenceAlpha) {
        public boolean changed() {
            return !changes.isEmpty();
        }
    }

    /** The closed window's tail of one bin at the budget it ran under (for in-band accounting). */
    public record WindowTail(int bin, int budget, long tokens, double p5) {}

    private Settings s;
    private int[][] ladders;     // per bin: ascending budgets, the last = the bin's end
    private int[] rung;          // per bin: index into its ladder
    private long version;
    /** The start schedule's dense layers: those of every schedule this controller makes. */
    private final SortedSet<Integer> denseLayers;
    /** Tails under the schedule rolled out with, and of the shadow replays, per (bin, budget). */
    private final WindowedTails actual;
    private final WindowedTails shadow;

    public BudgetController(Settings settings, Schedule start) {
        this.s = settings;
        this.actual = new WindowedTails(settings.binWidth());
        this.shadow = new WindowedTails(settings.binWidth());
        this.version = Math.max(1, start.version());
        this.denseLayers = start.denseLayers();
        buildLadders();
        placeOn(start);
    }

    public Settings settings() {
        return s;
    }

    /** The current schedule: one budget per bin, non-decreasing. */
    public Schedule schedule() {
        int[] b = new int[ladders.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = ladders[i][rung[i]];
        }
        return Schedule.ofBins(s.binWidth(), b).withVersion(version).withDenseLayers(denseLayers);
    }

    /**
     * The shadow schedule workers replay a share of trajectories under: each bin one rung lower
     * (bins already at the bottom stay). Non-decreasing because the ladders are.
     */
    public Schedule shadowSchedule() {
        int[] b = new int[ladders.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = ladders[i][Math.max(0, rung[i] - 1)];
        }
        Budgets.makeNonDecreasing(new Budgets.Bins() {
            @Override
            public int count() {
                return b.length;
            }

            @Override
            public boolean reached(int bin) {
                return !idle(bin);
            }

            @Override
            public int budget(int bin) {
                return b[bin];
            }

            @Override
            public void lower(int bin, int cap, int next) {
                b[bin] = ladders[bin][dearestAtMost(ladders[bin], cap)];
            }

            @Override
            public void raise(int bin, int floor, int from) {
                b[bin] = floor; // a shadow budget need not be a rung
            }
        });
        return Schedule.ofBins(s.binWidth(), b).withVersion(version).withDenseLayers(denseLayers);
    }

    /**
     * Adds a worker's report: tails under the schedule it rolled out with (its budgets per bin, which
     * may be an older version), and shadow tails under the shadow schedule it replayed with (either
     * may be null). Reports binned with another bin width than the controller's are ignored.
     */
    public void report(Schedule usedSchedule, TailStats tails, Schedule usedShadow, TailStats shadowTails) {
        if (tails != null && usedSchedule != null) {
            fileInto(actual, usedSchedule, tails);
        }
        if (shadowTails != null && usedShadow != null) {
            fileInto(shadow, usedShadow, shadowTails);
        }
    }

    private void fileInto(WindowedTails into, Schedule used, TailStats tails) {
        if (tails.binWidth() != s.binWidth()) {
            return;
        }
        // every bin gets the report's trajectories (its sequence count), also where they put no token:
        // a bin's share of the sequence α is a mean over all of them
        int bins = tails.sequences() > 0 ? ladders.length : Math.min(tails.binCount(), ladders.length);
        for (int bin = 0; bin < bins; bin++) {
            if (tails.count(bin) == 0 && tails.sequences() == 0) {
                continue;
            }
            int budget = Math.min(used.budgetAt(bin * s.binWidth()), ladders[bin][ladders[bin].length - 1]);
            into.add(bin, budget, tails);
        }
    }

    /** Closes the reporting window and decides. */
    public Decision tick() {
        return close(true);
    }

    /**
     * Closes the reporting window and reports its tails without deciding: the schedule stays as it
     * is (same version). A run with the controller switched off (a fixed schedule held whatever its
     * tails) still measures them.
     */
    public Decision observe() {
        return close(false);
    }

    private Decision close(boolean decide) {
        actual.roll(s.keepWindows());
        shadow.roll(s.keepWindows());
        List<WindowTail> window = new ArrayList<>();
        List<Change> changes = new ArrayList<>();
        int[] before = rung.clone();
        double[] judgedP5 = new double[ladders.length];
        long[] judgedTokens = new long[ladders.length];
        double[] share = shares(actual, rung);
        double seqDisagreements = sequenceDisagreements(share, rung);   // NaN when the sequence α is not judged
        double judgedSequenceAlpha = Math.exp(-seqDisagreements);
        // in a breach of the sequence guard nothing is lowered (the window raises instead)
        boolean sequenceBreach = s.sequenceGuard() && judgedSequenceAlpha < s.sequenceTau() - s.margin();
        boolean raised = false;
        for (int bin = 0; bin < ladders.length; bin++) {
            int budget = ladders[bin][rung[bin]];
            TailStats cur = actual.last(bin, budget);
            if (cur != null && cur.count(bin) > 0) {
                window.add(new WindowTail(bin, budget, cur.count(bin), cur.p5(bin)));
            }
            TailStats here = actual.merged(bin, budget);
            judgedTokens[bin] = here.count(bin);
            judgedP5[bin] = judgedTokens[bin] == 0 ? Double.NaN : here.p5(bin);
            if (!decide) {
                continue;
            }
            if (here.count(bin) >= s.minTokens() && here.p5(bin) < s.tau() - s.margin() && rung[bin] < ladders[bin].length - 1) {
                int to = ladders[bin][rung[bin] + 1];
                rung[bin]++;
                raised = true;
                changes.add(new Change(bin, budget, to, String.format(java.util.Locale.ROOT,
                        "p5 α %.3f < τ − margin %.3f over %d tokens", here.p5(bin), s.tau() - s.margin(), here.count(bin))));
                continue;
            }
            if (rung[bin] > 0) {
                int lower = ladders[bin][rung[bin] - 1];
                int previous = floorBefore(bin);
                TailStats below = shadow.merged(bin, lower);
                if (below.count(bin) >= s.minTokens() && below.p5(bin) >= s.tau() + s.hysteresis() && lower >= previous
                        && !sequenceBreach) {
                    String sequence = "";
                    if (s.sequenceGuard()) {
                        // the lowering must keep the predicted sequence α (this bin's share at the
                        // lower budget, from min-sequences shadow replays or more) at sequence-τ +
                        // hysteresis or above
                        double after = below.sequences() >= s.minSequences()
                                ? seqDisagreements - share[bin] + below.sequenceDisagreements(bin) : Double.NaN;
                        if (!(Math.exp(-after) >= s.sequenceTau() + s.hysteresis())) {
                            continue;
                        }
                        sequence = String.format(java.util.Locale.ROOT, "; sequence α %.3f there ≥ sequence-τ + hysteresis %.3f",
                                Math.exp(-after), s.sequenceTau() + s.hysteresis());
                        seqDisagreements = after;
                    }
                    rung[bin]--;
                    changes.add(new Change(bin, budget, lower, String.format(java.util.Locale.ROOT,
                            "shadow p5 α %.3f at budget %d ≥ τ + hysteresis %.3f over %d tokens%s", below.p5(bin), lower,
                            s.tau() + s.hysteresis(), below.count(bin), sequence)));
                }
            }
        }
        // the sequence guard: below sequence-τ − margin, the bin holding the largest share of the
        // disagreements goes one rung up (when no bin was raised by its own tail in this window)
        if (decide && sequenceBreach && !raised) {
            int worst = -1;
            for (int bin = 0; bin < ladders.length; bin++) {
                if (rung[bin] < ladders[bin].length - 1 && share[bin] > 0 && (worst < 0 || share[bin] > share[worst])) {
                    worst = bin;
                }
            }
            if (worst >= 0) {
                int from = ladders[worst][rung[worst]];
                rung[worst]++;
                changes.add(new Change(worst, from, ladders[worst][rung[worst]], String.format(java.util.Locale.ROOT,
                        "sequence α %.3f < sequence-τ − margin %.3f; this bin holds the largest share of the disagreements per trajectory (%.3f of %.3f)",
                        judgedSequenceAlpha, s.sequenceTau() - s.margin(), share[worst], -Math.log(judgedSequenceAlpha))));
            }
        }
        // Idle bins follow the next bin down, so they never hold a lowering back; a raise carries over.
        if (decide) {
            Budgets.makeNonDecreasing(new Rungs(changes));
        }
        if (!Arrays.equals(before, rung)) {
            version++;
        } else {
            changes.clear();
        }
        return new Decision(schedule(), List.copyOf(changes), List.copyOf(window), judgedP5, judgedTokens, judgedSequenceAlpha);
    }

    /**
     * The sequence α at the current budgets over the kept windows (docs/algorithms.md, "The sequence
     * α"): exp of minus the sum over bins of each bin's share of the mean disagreements per
     * trajectory at its budget. NaN when not judged: when some bin the rollouts reach has fewer than
     * min-sequences trajectories filed at its budget, rolled out or replayed in the shadow (a bin just
     * lowered), or the reached bins hold fewer than min-tokens tokens at their budgets in all.
     */
    public double sequenceAlpha() {
        return Math.exp(-sequenceDisagreements(shares(actual, rung), rung));
    }

    /**
     * Per bin, its share of the mean disagreements per trajectory at rungs[bin]: from min-sequences
     * trajectories rolled out there or more; else, from as many shadow replays at that budget (a bin
     * just lowered has them: they are what the lowering was predicted from); else NaN.
     */
    private double[] shares(WindowedTails tails, int[] rungs) {
        double[] out = new double[ladders.length];
        for (int bin = 0; bin < out.length; bin++) {
            int budget = ladders[bin][rungs[bin]];
            TailStats t = tails.merged(bin, budget);
            TailStats replayed = shadow.merged(bin, budget);
            out[bin] = t.sequences() >= s.minSequences() ? t.sequenceDisagreements(bin)
                    : replayed.sequences() >= s.minSequences() ? replayed.sequenceDisagreements(bin) : Double.NaN;
        }
        return out;
    }

    /** The sum of the reached bins' shares, NaN when the sequence α is not judged (see {@link #sequenceAlpha()}). */
    private double sequenceDisagreements(double[] share, int[] rungs) {
        double sum = 0;
        long tokens = 0;
        boolean any = false;
        for (int bin = 0; bin < share.length; bin++) {
            if (idle(bin)) {
                continue;
            }
            if (Double.isNaN(share[bin])) {
                return Double.NaN;
            }
            any = true;
            sum += share[bin];
            TailStats t = actual.merged(bin, ladders[bin][rungs[bin]]);
            // the tokens of the tails the share was read from (the shadow replays' for a bin just lowered)
            tokens += t.sequences() >= s.minSequences() ? t.count(bin) : shadow.merged(bin, ladders[bin][rungs[bin]]).count(bin);
        }
        return any && tokens >= s.minTokens() ? sum : Double.NaN;
    }

    /**
     * Live retuning: new settings take effect now. τ, margin, hysteresis, token and window counts
     * keep the collected tails; budget bounds, ladder ratio, bin width or context change the
     * ladders, so the current schedule is mapped onto the new ones (tails at budgets no longer on
     * a ladder are kept but unused; a bin-width change drops them, since bins no longer line up).
     * Returns the schedule afterwards: a new version whenever a setting changed (τ included, since
     * it changes what the schedule is held to), the same version when nothing did.
     */
    public Schedule retune(Settings next) {
        Schedule current = schedule();
        boolean rebin = next.binWidth() != s.binWidth();
        boolean reladder = rebin || next.minBudget() != s.minBudget() || next.maxBudget() != s.maxBudget()
                || next.ladderRatio() != s.ladderRatio() || next.maxContext() != s.maxContext();
        boolean changed = !next.equals(s);
        this.s = next;
        if (rebin) {
            actual.clear(next.binWidth());
            shadow.clear(next.binWidth());
        }
        if (reladder) {
            buildLadders();
            placeOn(current);
        }
        if (changed) {
            version++; // every accepted change of the controller's settings is a new, logged version
        }
        return schedule();
    }

    /** p5 α per bin at each bin's current budget over the kept windows (NaN where no tokens). */
    public double[] p5PerBin() {
        double[] out = new double[ladders.length];
        for (int bin = 0; bin < out.length; bin++) {
            TailStats t = actual.merged(bin, ladders[bin][rung[bin]]);
            out[bin] = t.count(bin) == 0 ? Double.NaN : t.p5(bin);
        }
        return out;
    }

    // ---------------------------------------------------------------- internals

    private void buildLadders() {
        int bins = s.bins();
        ladders = new int[bins][];
        for (int bin = 0; bin < bins; bin++) {
            ladders[bin] = ladder(s, (bin + 1) * s.binWidth());
        }
        rung = new int[bins];
    }

    /**
     * The budgets a bin ending at {@code end} can take, ascending: page multiples from min-budget
     * about ladder-ratio apart, under {@code end} and at most max-budget, then {@code end} itself
     * (the top rung: the whole bin, dense within it). Offline calibration can use the same rungs.
     */
    public static int[] ladder(Settings s, int end) {
        List<Integer> l = new ArrayList<>();
        double b = s.minBudget();
        int last = 0;
        while (true) {
            int r = Budgets.roundToPage(b);
            if (r >= end || r > s.maxBudget()) {
                break;
            }
            if (r > last) {
                l.add(r);
                last = r;
            }
            b *= s.ladderRatio();
        }
        if (end > last) {
            l.add(Math.max(end, Budgets.MIN_BUDGET));
        }
        return l.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Cheapest rung at least as large as the schedule's budget in each bin (top rung for dense). */
    private void placeOn(Schedule start) {
        for (int bin = 0; bin < ladders.length; bin++) {
            int want = start.isDense() ? Integer.MAX_VALUE : start.budgetAt(bin * s.binWidth());
            rung[bin] = cheapestAtLeast(ladders[bin], want);
        }
        // no bin has been idle yet: only the carry-over applies
        Budgets.makeNonDecreasing(new Rungs(null) {
            @Override
            public boolean reached(int bin) {
                return true;
            }
        });
    }

    /**
     * The bins' rungs as {@link Budgets#makeNonDecreasing} moves them: a lowered bin takes the
     * dearest rung at most the cap, a raised one the cheapest at least the floor; each move is
     * logged as a change when {@code changes} is not null.
     */
    private class Rungs implements Budgets.Bins {
        private final List<Change> changes;

        Rungs(List<Change> changes) {
            this.changes = changes;
        }

        @Override
        public int count() {
            return ladders.length;
        }

        @Override
        public boolean reached(int bin) {
            return !idle(bin);
        }

        @Override
        public int budget(int bin) {
            return ladders[bin][rung[bin]];
        }

        @Override
        public void lower(int bin, int cap, int next) {
            int from = budget(bin);
            rung[bin] = dearestAtMost(ladders[bin], cap);
            log(bin, from, "followed bin " + next + " down (no rollout tokens in this bin over the kept windows)");
        }

        @Override
        public void raise(int bin, int floor, int from) {
            int was = budget(bin);
            rung[bin] = cheapestAtLeast(ladders[bin], floor);
            log(bin, was, "raised with bin " + from + " (budgets never decrease)");
        }

        private void log(int bin, int from, String reason) {
            if (changes != null) {
                changes.add(new Change(bin, from, budget(bin), reason));
            }
        }
    }

    /** The dearest rung at most {@code budget} (the bottom rung when none is). */
    private static int dearestAtMost(int[] ladder, int budget) {
        for (int k = ladder.length - 1; k > 0; k--) {
            if (ladder[k] <= budget) {
                return k;
            }
        }
        return 0;
    }

    /** No rollout tokens in the bin, at any budget, over the kept windows. */
    private boolean idle(int bin) {
        for (int budget : ladders[bin]) {
            if (actual.any(bin, budget)) {
                return false;
            }
        }
        return true;
    }

    /** The budget bin's lowering must not go under: that of the nearest earlier bin that is not idle (0 if none). */
    private int floorBefore(int bin) {
        for (int j = bin - 1; j >= 0; j--) {
            if (!idle(j)) {
                return ladders[j][rung[j]];
            }
        }
        return 0;
    }

    private static int cheapestAtLeast(int[] ladder, int budget) {
        for (int k = 0; k < ladder.length; k++) {
            if (ladder[k] >= budget) {
                return k;
            }
        }
        return ladder.length - 1;
    }
}
