package io.tailguard.rollout.sparse;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One approximation budget under one tail (docs/algorithms.md, "One approximation budget"): which
 * weights a lease rolls out with, and under which sparsity schedule, as a plain state machine the
 * controller actor drives.
 *
 * <p>An <em>option</em> is a weight format with its own schedule: the plain policy (its own float32
 * weights) and each compressed format the compression workers published (quantized at b bits, a
 * V:N:M pattern; the newest version of each), every one with a {@link BudgetController} of its own
 * that moves its budgets by its own tails, raising a bin on a breach and lowering it when the shadow
 * replay one rung lower clears τ + hysteresis. A compressed format starts on the schedule of the
 * option in use when it is first offered. Each option is priced by the cost model ({@link Pricing}:
 * the predicted decode cost of the run's rollout with the format's weight bytes under the option's
 * schedule), and each {@link #tick} chooses the option in use:
 * <ul>
 *   <li>an option <em>meets τ</em> when its p5 α, at its budgets over the kept windows, holds in
 *       every judged bin (a bin with at least min-tokens tokens there): for the option in use, no
 *       judged bin below τ − margin; for any other, at least one judged bin and every judged bin at
 *       least τ + hysteresis (the same two tests that raise and lower a budget);</li>
 *   <li>the option in use is the cheapest option that meets τ (a tie keeps the option in use, then
 *       prefers the plain policy); when none does, the plain policy, the fallback (its own budget
 *       controller raised the bins it breached in);</li>
 *   <li>an option never measured (no judged bin) is never chosen, except the plain policy, where a
 *       run starts: it is leased to as a probe, when it is next to the option in use, until it has
 *       min-tokens tokens in a bin; a format that is off, or more than max-lag versions behind the
 *       policy, is neither chosen nor probed.</li>
 * </ul>
 * So a breach by the option in use raises: to the cheapest other option meeting τ + hysteresis, else
 * the plain policy, while its own schedule is raised where it breached; and the option steps down
 * when the next cheaper option, measured by the probe leases, clears τ + hysteresis.
 *
 * <p>Leases: the option in use gets all of them while no other option is usable (then this is the
 * plain budget controller alone, as without compression); otherwise a share {@code probeShare} goes
 * to its neighbours in predicted cost, the next cheaper and the next costlier usable option, in
 * turn, so the option to step down to keeps being measured and so does the one a breach would raise
 * to. Every lease of an option carries that option's shadow schedule, so each option's schedule can
 * step down by its own shadow replays.
 *
 * <p>The KV cache is the second axis: with {@code halfCaches}, every option is offered twice, on a
 * float32 cache and on a float16 one ({@link WeightFormat#withHalfCache}, labelled "+kv16"), each
 * pair its own option with its own schedule and tails, priced with 2 bytes per cached key and value.
 * The policy's own weights on a float16 cache ("plain+kv16") exist from the start, never lag the
 * policy and do not depend on compressed rollout being on; a compressed format's twin comes and goes
 * with its format. So the option in use is the cheapest (schedule × weights × cache) combination that
 * meets τ, and the plain policy stays the one fallback.
 *
 * <p>A newer version of a format replaces the older one in the leases and keeps its tails, its
 * schedule and whether it is in use: a version compressed from a newer policy is closer to the
 * policy that probes it, so the older evidence errs on the safe side; late reports of a replaced
 * version still count, for the same reason.
 */
public final class ApproximationBudget {

    /** on: compressed options are offered at all; probeShare: the probe leases' share; maxLag: how far behind the policy a compressed version may be. */
    public record Settings(boolean on, double probeShare, int maxLag) {
        public Settings {
            if (!(probeShare > 0 && probeShare <= 0.5)) {
                throw new IllegalArgumentException("probe-share: must be in (0, 0.5], got " + probeShare);
            }
            if (maxLag < 0) {
                throw new IllegalArgumentException("max-lag: must be >= 0, got " + maxLag);
            }
        }
    }

    /**
     * The cost model's prediction for rolling out with a format's weights under a schedule (any unit,
     * the same for every option: options are compared by it).
     */
    @FunctionalInterface
    public interface Pricing {
        double cost(WeightFormat format, Schedule schedule);
    }

    /**
     * What a lease rolls out with: the option's format and compressed version (−1: the policy's own
     * weights), its schedule and shadow schedule, and whether the lease is a probe (not the option in use).
     */
    public record Choice(WeightFormat format, long version, Schedule schedule, Schedule shadow, boolean probe) {
        public boolean plain() {
            return version < 0;
        }
    }

    /**
     * One option after a window: its format's label and description, the version offered (−1: the
     * plain policy), whether it is in use, its schedule and predicted cost, its p5 α and tokens per
     * bin at its budgets over the kept windows (NaN and 0 where none), its rollout tokens in the
     * window, its measured tokens per second of generation over the kept windows (NaN: no lease),
     * where it stands, and its sequence α at its budgets over the kept windows (NaN: not judged).
     */
    public record OptionState(String label, WeightFormat format, long version, boolean inUse, Schedule schedule, double predictedCost,
                              double[] p5, long[] tokens, long windowTokens, double tokensPerSecond, String state,
                              double sequenceAlpha) {}

    /**
     * A window's outcome: the label of the option in use after it, whether that changed, why, the
     * plain policy's budget decision, and every option's state (the plain policy first).
     */
    public record Decision(String inUse, boolean changed, String reason, BudgetController.Decision plain, List<OptionState> options) {
        /** The option in use. */
        public OptionState chosen() {
            for (OptionState o : options) {
                if (o.inUse()) {
                    return o;
                }
            }
            return options.get(0);
        }
    }

    public static final String PLAIN = "plain";
    /** In-run measurements of a format before they correct its price ({@link #measured}). */
    public static final int MIN_MEASUREMENTS = 3;

    private final Pricing pricing;
    private BudgetController.Settings ctl;
    private Settings s;
    private final Option plain;
    /** Every option but the plain policy, by label: the compressed formats and the float16-cache twins. */
    private final Map<String, Option> compressed = new LinkedHashMap<>();
    private final boolean halfCaches;
    private final Map<String, Schedule> resumed = new LinkedHashMap<>();
    private Option inUse;
    private String reason;
    private long leases;
    private long probes;
    /** Per format label, the in-run paired measurements summed: {live, dense, predicted live, predicted dense} seconds, count. */
    private final Map<String, double[]> measurements = new java.util.HashMap<>();

    /** The plain policy's budget controller, the compressed options' settings, and how options are priced; float32 caches only. */
    public ApproximationBudget(BudgetController plainBudgets, Settings settings, Pricing pricing) {
        this(plainBudgets, settings, pricing, false);
    }

    /** As above; halfCaches: every option is also offered on a float16 KV cache (the class comment). */
    public ApproximationBudget(BudgetController plainBudgets, Settings settings, Pricing pricing, boolean halfCaches) {
        this.ctl = plainBudgets.settings();
        this.s = settings;
        this.pricing = pricing;
        this.halfCaches = halfCaches;
        this.plain = new Option(WeightFormat.plain(), plainBudgets, -1);
        this.inUse = plain;
        price(plain);
        if (halfCaches) {
            WeightFormat half = WeightFormat.plain().withHalfCache();
            Option o = new Option(half, new BudgetController(ctl, plainBudgets.schedule()), -1);
            compressed.put(half.label(), o);
            price(o);
        }
        this.reason = halfCaches ? "plain+kv16 offered on the plain policy's schedule: probed while next to the option in use"
                : settings.on() ? "no compressed version yet" : "compressed rollout off";
    }

    /** Whether every option is also offered on a float16 KV cache. */
    public boolean halfCaches() {
        return halfCaches;
    }

    public Settings settings() {
        return s;
    }

    /** Why the last tick (or offer) left the option in use where it is. */
    public String reason() {
        return reason;
    }

    /** The option in use. */
    public String inUse() {
        return inUse.format.label();
    }

    /** The newest compressed version offered of any format (−1: none). */
    public long newestVersion() {
        long v = -1;
        for (Option o : compressed.values()) {
            v = Math.max(v, o.version);
        }
        return v;
    }

    /** A format's option and, with float16 caches offered, its twin on one. */
    private List<WeightFormat> variants(WeightFormat format) {
        return halfCaches ? List.of(format, format.withHalfCache()) : List.of(format);
    }

    /**
     * A compressed version of a format: taken when its format is new, or when newer than the version
     * of the format held (then its tails, schedule and use carry over). A new format starts on the
     * schedule of the option in use.
     */
    public boolean offer(WeightFormat format, long version) {
        if (format.ownWeights() || format.cacheBits() != 32) {
            throw new IllegalArgumentException("a compressed version is offered by its weights' format, not " + format.label());
        }
        Option o = compressed.get(format.label());
        if (o != null) {
            if (version <= o.version) {
                return false;
            }
            long before = o.version;
            boolean used = false;
            for (WeightFormat f : variants(format)) {
                Option twin = compressed.get(f.label());
                twin.version = version;
                used |= twin == inUse;
            }
            reason = format.label() + " v" + version + " replaces v" + before + (used ? " (in use)" : "");
            return true;
        }
        StringBuilder from = new StringBuilder();
        for (WeightFormat f : variants(format)) {
            Schedule before = resumed.remove(f.label());
            o = new Option(f, new BudgetController(ctl, before != null ? before : inUse.budgets.schedule()), version);
            compressed.put(f.label(), o);
            price(o);
            from.append(from.isEmpty() ? "" : "; ").append(f.label()).append(" on ").append(before != null
                    ? "its own schedule from before a restart (v" + before.version() + ")" : "the schedule of " + inUse.format.label());
        }
        reason = String.format(Locale.ROOT, "%s v%d offered, %s: probed with %s of the leases while next to the option in use",
                format.label(), version, from, pct(s.probeShare()));
        return true;
    }

    /**
     * Schedules that formats had before the controller restarted (by label): a format offered from
     * now on starts on its own, not on the schedule of the option in use, so what its shadow replays
     * earned is not lost. Its tails and whether it was in use are: it is probed again before it is
     * chosen.
     */
    public void resume(Map<String, Schedule> schedules) {
        schedules.forEach((label, sched) -> {
            Option own = compressed.get(label);
            if (own != null && own.format.ownWeights() && !own.reported) {
                // the policy's float16-cache option exists from the start: it takes its schedule back
                compressed.put(label, new Option(own.format, new BudgetController(ctl, sched), -1));
                price(compressed.get(label));
            } else if (!compressed.containsKey(label) && !PLAIN.equals(label)) {
                resumed.put(label, sched);
            }
        });
    }

    /** Each compressed format's current schedule, by label (what {@link #resume} takes back). */
    public Map<String, Schedule> compressedSchedules() {
        Map<String, Schedule> out = new LinkedHashMap<>();
        compressed.forEach((label, o) -> out.put(label, o.budgets.schedule()));
        return out;
    }

    /**
     * The option of the next lease. While other options are usable, leases are counted, and lease n
     * is a probe when ⌊n·probeShare⌋ grows, so probes get exactly their share over any run of leases,
     * spread evenly; probes go to the neighbours of the option in use in turn.
     */
    public Choice choose(long policyVersion) {
        Option use = usable(inUse, policyVersion) ? inUse : plain;
        List<Option> next = neighbours(use, policyVersion);
        if (next.isEmpty()) {
            return use.choice(false);
        }
        leases++;
        boolean probe = Math.floor(leases * s.probeShare()) > Math.floor((leases - 1) * s.probeShare());
        if (!probe) {
            return use.choice(false);
        }
        return next.get((int) (probes++ % next.size())).choice(true);
    }

    /**
     * A lease's tails: under the schedule it sampled with and its shadow replay (either may be null),
     * with its rollout tokens and generation seconds. label: the format it sampled with ({@link
     * #PLAIN} or null: the policy's own weights), version its compressed version. A version newer
     * than the format's held one, or of a format never offered, is ignored.
     */
    public void report(String label, long version, Schedule used, TailStats tails, Schedule shadowUsed, TailStats shadowTails,
                       long tokens, double seconds) {
        Option o = label == null || label.isEmpty() || PLAIN.equals(label) ? plain : compressed.get(label);
        if (o == null && version < 0) {
            o = plain;
        }
        if (o == null || (!o.format.ownWeights() && version > o.version)) {
            return;
        }
        o.reported = true;
        o.budgets.report(used, tails, shadowUsed, shadowTails);
        o.windowTokens += tokens;
        o.windowSeconds += Math.max(0, seconds);
    }

    /**
     * Closes the window: every option's budget controller decides on its own tails (adapt) or only
     * reports them (the controller switched off holds every schedule), then the option in use is chosen.
     */
    public Decision tick(long policyVersion, boolean adapt) {
        BudgetController.Decision plainDecision = plain.close(adapt, ctl.keepWindows());
        for (Option o : compressed.values()) {
            o.close(adapt, ctl.keepWindows());
        }
        for (Option o : all()) {
            price(o);
        }
        Option was = inUse;
        Option best = null;
        for (Option o : all()) {
            if (usable(o, policyVersion) && meets(o) && (best == null || cheaper(o, best))) {
                best = o;
            }
        }
        inUse = best == null ? plain : best;
        reason = why(was, policyVersion);
        List<OptionState> states = new ArrayList<>();
        for (Option o : all()) {
            states.add(o.state(o == inUse, standing(o, policyVersion)));
        }
        return new Decision(inUse.format.label(), inUse != was, reason, plainDecision, List.copyOf(states));
    }

    /**
     * New settings (live tuning): the controller's apply to every option's budget controller (the
     * plain one included, once the caller has retuned it this is a no-op for it), the compressed
     * options' from the next lease; switched off, the plain policy is in use at once.
     */
    public void retune(BudgetController.Settings controller, Settings settings) {
        this.ctl = controller;
        this.s = settings;
        for (Option o : all()) {
            o.budgets.retune(controller);
            price(o);
        }
        if (!settings.on() && !inUse.format.ownWeights()) {
            inUse = plain;
            reason = "compressed rollout off";
        }
    }

    /** Every option as it stands now (the plain policy first), without closing a window. */
    public List<OptionState> options(long policyVersion) {
        List<OptionState> out = new ArrayList<>();
        for (Option o : all()) {
            out.add(o.state(o == inUse, standing(o, policyVersion)));
        }
        return out;
    }

    /** The plain policy's budget controller. */
    public BudgetController plainBudgets() {
        return plain.budgets;
    }

    // ---------------------------------------------------------------- the rule

    /** The policy's own weights always (on either cache); a compressed version while compressed rollout is on and it is recent enough. */
    private boolean usable(Option o, long policyVersion) {
        return o.format.ownWeights() || (s.on() && policyVersion - o.version <= s.maxLag());
    }

    /**
     * Meets τ: the option in use while no judged bin is below τ − margin; another with a judged bin
     * and all of them ≥ τ + hysteresis. With the sequence guard on, its sequence α too: the option in
     * use while it is not judged below sequence-τ − margin, another when judged at sequence-τ +
     * hysteresis or above.
     */
    private boolean meets(Option o) {
        int worst = worstJudged(o);
        if (o == inUse) {
            return (worst < 0 || o.p5[worst] >= ctl.tau() - ctl.margin()) && !sequenceBreach(o);
        }
        return worst >= 0 && o.p5[worst] >= ctl.tau() + ctl.hysteresis()
                && (!ctl.sequenceGuard() || o.sequenceAlpha >= ctl.sequenceTau() + ctl.hysteresis());
    }

    /** The sequence guard is on and the option's judged sequence α is below sequence-τ − margin. */
    private boolean sequenceBreach(Option o) {
        return ctl.sequenceGuard() && o.sequenceAlpha < ctl.sequenceTau() - ctl.margin();
    }

    /** Cheaper by predicted cost; a tie goes to the option in use, then to the plain policy. */
    private boolean cheaper(Option a, Option b) {
        if (a.cost != b.cost) {
            return a.cost < b.cost;
        }
        return a == inUse || (b != inUse && a == plain);
    }

    /** The usable options next to {@code use} in predicted cost: the next cheaper, then the next costlier. */
    private List<Option> neighbours(Option use, long policyVersion) {
        List<Option> order = new ArrayList<>();
        for (Option o : all()) {
            if (usable(o, policyVersion)) {
                order.add(o);
            }
        }
        order.sort(Comparator.comparingDouble(o -> o.cost)); // stable: the plain policy, then in order offered
        int at = order.indexOf(use);
        List<Option> out = new ArrayList<>(2);
        if (at > 0) {
            out.add(order.get(at - 1));
        }
        if (at >= 0 && at + 1 < order.size()) {
            out.add(order.get(at + 1));
        }
        return out;
    }

    /** The judged bin (≥ min-tokens at the option's budget) with the lowest p5, or −1 when none is judged. */
    private int worstJudged(Option o) {
        int worst = -1;
        for (int bin = 0; bin < o.p5.length; bin++) {
            if (o.tokens[bin] >= ctl.minTokens() && (worst < 0 || o.p5[bin] < o.p5[worst])) {
                worst = bin;
            }
        }
        return worst;
    }

    private String why(Option was, long policyVersion) {
        Option now = inUse;
        if (!s.on() && !halfCaches) {
            return "compressed rollout off";
        }
        if (compressed.isEmpty()) {
            return "no compressed version yet";
        }
        if (now == was) {
            if (sequenceBreach(now)) {
                return String.format(Locale.ROOT, "%s in use, the fallback: sequence α %.3f < sequence-τ − margin %.3f, no other "
                        + "option meets τ + hysteresis; its own schedule is raised where the largest share is", describe(now),
                        now.sequenceAlpha, ctl.sequenceTau() - ctl.margin());
            }
            int worst = worstJudged(now);
            if (worst >= 0 && now.p5[worst] < ctl.tau() - ctl.margin()) {
                // only the plain policy stays in use after a breach: no other option meets τ
                return String.format(Locale.ROOT, "%s in use, the fallback: bin %d p5 α %.3f < τ − margin %.3f over %d tokens, "
                        + "no other option meets τ + hysteresis; its own schedule is raised there", describe(now), worst,
                        now.p5[worst], ctl.tau() - ctl.margin(), now.tokens[worst]);
            }
            return String.format(Locale.ROOT, "%s in use at predicted cost %.4g: %s", describe(now), now.cost, worst < 0
                    ? "no bin judged this window" : String.format(Locale.ROOT, "lowest judged p5 α %.3f (bin %d) ≥ τ − margin %.3f",
                    now.p5[worst], worst, ctl.tau() - ctl.margin()));
        }
        if (!usable(was, policyVersion)) {
            return String.format(Locale.ROOT, "%s is %d versions behind policy v%d (max-lag %d): %s in use", describe(was),
                    policyVersion - was.version, policyVersion, s.maxLag(), now == plain ? "back to the plain policy" : describe(now));
        }
        if (sequenceBreach(was)) {
            return String.format(Locale.ROOT, "%s: sequence α %.3f < sequence-τ − margin %.3f: %s", describe(was), was.sequenceAlpha,
                    ctl.sequenceTau() - ctl.margin(), (now == plain ? "back to the plain policy" : describe(now) + " in use")
                            + String.format(Locale.ROOT, " (predicted cost %.4g)", now.cost));
        }
        int wasWorst = worstJudged(was);
        if (wasWorst >= 0 && was.p5[wasWorst] < ctl.tau() - ctl.margin()) {
            return String.format(Locale.ROOT, "%s: bin %d p5 α %.3f < τ − margin %.3f over %d tokens: %s", describe(was), wasWorst,
                    was.p5[wasWorst], ctl.tau() - ctl.margin(), was.tokens[wasWorst], (now == plain ? "back to the plain policy"
                            : describe(now) + " in use") + String.format(Locale.ROOT, " (predicted cost %.4g)", now.cost));
        }
        int worst = worstJudged(now);
        return String.format(Locale.ROOT, "%s: every judged bin's p5 α ≥ τ + hysteresis %.3f (lowest %.3f, bin %d, %d tokens) at predicted "
                        + "cost %.4g < %.4g of %s: in use", describe(now), ctl.tau() + ctl.hysteresis(), now.p5[worst], worst, now.tokens[worst],
                now.cost, was.cost, describe(was));
    }

    /** Where an option stands after a window (for status). */
    private String standing(Option o, long policyVersion) {
        if (o == inUse) {
            return "in use";
        }
        if (!o.format.ownWeights() && !s.on()) {
            return "off";
        }
        if (!usable(o, policyVersion)) {
            return String.format(Locale.ROOT, "retired: %d versions behind policy v%d (max-lag %d)", policyVersion - o.version,
                    policyVersion, s.maxLag());
        }
        int worst = worstJudged(o);
        String probed = neighbours(usable(inUse, policyVersion) ? inUse : plain, policyVersion).contains(o) ? "probed" : "not probed";
        if (worst < 0) {
            return String.format(Locale.ROOT, "%s: no bin has %d tokens yet", probed, ctl.minTokens());
        }
        if (o.p5[worst] < ctl.tau() + ctl.hysteresis()) {
            return String.format(Locale.ROOT, "%s: bin %d p5 α %.3f < τ + hysteresis %.3f", probed, worst, o.p5[worst],
                    ctl.tau() + ctl.hysteresis());
        }
        if (ctl.sequenceGuard() && !(o.sequenceAlpha >= ctl.sequenceTau() + ctl.hysteresis())) {
            return Double.isNaN(o.sequenceAlpha) ? probed + ": sequence α not judged yet"
                    : String.format(Locale.ROOT, "%s: sequence α %.3f < sequence-τ + hysteresis %.3f", probed, o.sequenceAlpha,
                    ctl.sequenceTau() + ctl.hysteresis());
        }
        return String.format(Locale.ROOT, "%s: meets τ + hysteresis, predicted cost %.4g ≥ %.4g of the option in use", probed, o.cost, inUse.cost);
    }

    private static String describe(Option o) {
        return o.format.isPlain() ? "the plain policy" : o.format.ownWeights() ? "the policy's " + o.format.label()
                : o.format.label() + " v" + o.version;
    }

    private void price(Option o) {
        o.cost = pricing.cost(o.format, o.budgets.schedule()) * calibration(o.format.label());
    }

    /**
     * A lease of this format (label; {@link #PLAIN}: the policy's own weights) measured in the run: its
     * decode steps timed under its option (live) and, in lockstep, by the policy's own weights densely
     * (dense), with the cost model's seconds for the same steps. Prices use it from the next tick on.
     * Non-positive or non-finite figures are ignored.
     */
    public void measured(String label, double liveSeconds, double denseSeconds, double predictedLive, double predictedDense) {
        double[] v = {liveSeconds, denseSeconds, predictedLive, predictedDense};
        for (double x : v) {
            if (!(x > 0) || !Double.isFinite(x)) {
                return;
            }
        }
        double[] m = measurements.computeIfAbsent(label, k -> new double[5]);
        for (int i = 0; i < 4; i++) {
            m[i] += v[i];
        }
        m[4]++;
    }

    /**
     * How far the cost model is off for a format, measured: the live share of dense seconds measured
     * over the share it predicted for the same steps, (Σ live / Σ dense) / (Σ predicted live / Σ
     * predicted dense). A format's price is its predicted cost times this factor, so options are
     * compared by what they cost in this run on this machine (the packed kernels' unpacking, which
     * bytes alone do not price, included); 1 until it has {@link #MIN_MEASUREMENTS} measurements.
     */
    public double calibration(String label) {
        double[] m = measurements.get(label);
        if (m == null || m[4] < MIN_MEASUREMENTS) {
            return 1.0;
        }
        return (m[0] / m[1]) / (m[2] / m[3]);
    }

    private List<Option> all() {
        List<Option> out = new ArrayList<>(1 + compressed.size());
        out.add(plain);
        out.addAll(compressed.values());
        return out;
    }

    private static String pct(double share) {
        return String.format(Locale.ROOT, "%.0f %%", 100 * share);
    }

    /** One option: its format, version, budget controller, what the last tick judged, its price and its measured rate. */
    private static final class Option {
        final WeightFormat format;
        final BudgetController budgets;
        long version;
        /** Whether a lease of it has reported tails (a restart's schedule no longer replaces its own then). */
        boolean reported;
        double cost;
        double[] p5;
        long[] tokens;
        double sequenceAlpha = Double.NaN;
        long windowTokens;
        double windowSeconds;
        long lastWindowTokens;
        /** Per closed window, {tokens, seconds}, the last keep-windows of them. */
        final Deque<double[]> rates = new ArrayDeque<>();

        Option(WeightFormat format, BudgetController budgets, long version) {
            this.format = format;
            this.budgets = budgets;
            this.version = version;
            int bins = budgets.settings().bins();
            this.p5 = new double[bins];
            java.util.Arrays.fill(p5, Double.NaN);
            this.tokens = new long[bins];
        }

        BudgetController.Decision close(boolean adapt, int keep) {
            BudgetController.Decision d = adapt ? budgets.tick() : budgets.observe();
            p5 = d.p5();
            tokens = d.tokens();
            sequenceAlpha = d.sequenceAlpha();
            rates.addLast(new double[] {windowTokens, windowSeconds});
            while (rates.size() > keep) {
                rates.removeFirst();
            }
            lastWindowTokens = windowTokens;
            windowTokens = 0;
            windowSeconds = 0;
            return d;
        }

        double tokensPerSecond() {
            double t = 0;
            double sec = 0;
            for (double[] r : rates) {
                t += r[0];
                sec += r[1];
            }
            return sec > 0 ? t / sec : Double.NaN;
        }

        Choice choice(boolean probe) {
            return new Choice(format, version, budgets.schedule(), budgets.shadowSchedule(), probe);
        }

        OptionState state(boolean inUse, String standing) {
            return new OptionState(format.label(), format, version, inUse, budgets.schedule(), cost, p5.clone(),
                    tokens.clone(), lastWindowTokens, tokensPerSecond(), standing, sequenceAlpha);
        }
    }
}
