package io.tailguard.rollout.sparse;

import java.util.Locale;

/**
 * Whether a compressed copy of the policy (quantized or pruned weights, docs/algorithms.md, "YAQA, LDLQ and RTN" and "V:N:M sparsity")
 * may roll out in place of the policy itself: the same tail guard as sparsity, as a plain state
 * machine the controller actor drives next to its {@link BudgetController}.
 *
 * <p>Two rollout options: plain (the published policy under the sparse schedule) and compressed
 * (the newest compressed version, decoded on its packed weights, under the same schedule). Trajectories of the
 * compressed option are probed by the dense policy (the current published weights), so their α
 * tail measures everything the learner's importance weights must correct: compression, sparsity,
 * and the distance the policy has moved since the compressed version. The bulk of leases goes to
 * the option in use; a share {@code probeShare} goes to the other one, so the compressed tail keeps
 * being measured while the plain policy is in use and the budget controller keeps its evidence while
 * the compressed one is. The tails are kept per (bin, budget), like the budget controller's, over
 * its last {@code keepWindows} windows, and judged at the current schedule's budgets; a bin with
 * fewer than {@code minTokens} tokens there is not judged. Each {@link #tick}:
 * <ul>
 *   <li>off, no compressed version, or one more than {@code maxLag} versions behind the policy:
 *       plain, and no lease goes to the compressed option at all;</li>
 *   <li>in use, and some judged bin's p5 α is below τ − margin: back to plain (the same test that
 *       raises a budget);</li>
 *   <li>not in use, at least one judged bin, and every judged bin's p5 α at least τ + hysteresis:
 *       compressed (the same test that lowers a budget).</li>
 * </ul>
 * A newer compressed version replaces the old one in the leases, and the option keeps its tails
 * and its state, as the budget controller keeps its tails across policy versions: the kept windows
 * age out, and a newer version, compressed from a newer policy, is closer to the policy that probes
 * it, so the older evidence errs on the safe side. Late reports of a replaced version still count,
 * for the same reason.
 */
public final class CompressedActorGuard {

    /** on: the compressed option is offered at all; probeShare: the minority option's share of leases. */
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

    public enum Option { PLAIN, COMPRESSED }

    /**
     * A tick's outcome: the compressed option in use or not, whether that changed, why, and the
     * compressed option's p5 α and tokens per bin at the current budgets over the kept windows
     * (NaN and 0 where it has none).
     */
    public record Decision(boolean inUse, boolean changed, String reason, double[] p5, long[] tokens) {}

    private BudgetController.Settings ctl;
    private Settings s;
    private final WindowedTails tails;
    private long version = -1;
    private boolean inUse;
    private String reason;
    private long leases;

    public CompressedActorGuard(BudgetController.Settings controller, Settings settings) {
        this.ctl = controller;
        this.s = settings;
        this.tails = new WindowedTails(controller.binWidth());
        this.reason = settings.on() ? "no compressed version yet" : "compressed rollout off";
    }

    public Settings settings() {
        return s;
    }

    /** The compressed version offered (−1: none yet). */
    public long version() {
        return version;
    }

    public boolean inUse() {
        return inUse;
    }

    /** Why the last tick (or offer) left the option where it is. */
    public String reason() {
        return reason;
    }

    /** A compressed version: taken when newer than the one held (tails and state carry over). */
    public boolean offer(long compressedVersion) {
        if (compressedVersion <= version) {
            return false;
        }
        long before = version;
        version = compressedVersion;
        reason = before < 0
                ? "compressed v" + compressedVersion + " offered: probed with " + pct(s.probeShare()) + " of the leases"
                : "compressed v" + compressedVersion + " replaces v" + before + (inUse ? " (in use)" : " (probed)");
        return true;
    }

    /** Whether a lease may go to the compressed option now (on, offered, within max-lag of the policy). */
    public boolean usable(long policyVersion) {
        return s.on() && version >= 0 && policyVersion - version <= s.maxLag();
    }

    /**
     * The option of the next lease. Leases are counted while the compressed option is usable; lease
     * n goes to the minority option when ⌊n·probeShare⌋ grows, so the minority gets exactly its
     * share over any run of leases, spread evenly.
     */
    public Option choose(long policyVersion) {
        if (!usable(policyVersion)) {
            return Option.PLAIN;
        }
        leases++;
        boolean minority = Math.floor(leases * s.probeShare()) > Math.floor((leases - 1) * s.probeShare());
        boolean compressed = inUse != minority;
        return compressed ? Option.COMPRESSED : Option.PLAIN;
    }

    /**
     * The α tails of a lease rolled out by compressed version {@code compressedVersion} (the one held,
     * or one it replaced) under {@code used} (the schedule it sampled with). Ignored when binned with
     * another bin width.
     */
    public void report(long compressedVersion, Schedule used, TailStats report) {
        if (compressedVersion < 0 || compressedVersion > version || report == null || used == null
                || report.binWidth() != tails.binWidth()) {
            return;
        }
        for (int bin = 0; bin < Math.min(report.binCount(), ctl.bins()); bin++) {
            if (report.count(bin) > 0) {
                tails.add(bin, used.budgetAt(bin * tails.binWidth()), report);
            }
        }
    }

    /** Closes the reporting window and decides, judging each bin at {@code current}'s budget. */
    public Decision tick(long policyVersion, Schedule current) {
        tails.roll(ctl.keepWindows());
        int bins = ctl.bins();
        double[] p5 = new double[bins];
        long[] tokens = new long[bins];
        for (int bin = 0; bin < bins; bin++) {
            TailStats t = tails.merged(bin, current.budgetAt(bin * tails.binWidth()));
            tokens[bin] = t.count(bin);
            p5[bin] = tokens[bin] == 0 ? Double.NaN : t.p5(bin);
        }
        boolean was = inUse;
        if (!s.on()) {
            inUse = false;
            reason = "compressed rollout off";
        } else if (version < 0) {
            inUse = false;
            reason = "no compressed version yet";
        } else if (policyVersion - version > s.maxLag()) {
            inUse = false;
            reason = String.format(Locale.ROOT, "compressed v%d is %d versions behind policy v%d (max-lag %d): plain policy only",
                    version, policyVersion - version, policyVersion, s.maxLag());
        } else if (inUse) {
            int worst = worstJudged(p5, tokens);
            if (worst >= 0 && p5[worst] < ctl.tau() - ctl.margin()) {
                inUse = false;
                reason = String.format(Locale.ROOT, "compressed v%d: bin %d p5 α %.3f < τ − margin %.3f over %d tokens: back to the plain policy",
                        version, worst, p5[worst], ctl.tau() - ctl.margin(), tokens[worst]);
            } else {
                reason = worst < 0 ? "compressed v" + version + " in use (no bin judged this window)"
                        : String.format(Locale.ROOT, "compressed v%d in use: lowest judged p5 α %.3f (bin %d) ≥ τ − margin %.3f",
                        version, p5[worst], worst, ctl.tau() - ctl.margin());
            }
        } else {
            int worst = worstJudged(p5, tokens);
            if (worst < 0) {
                reason = String.format(Locale.ROOT, "compressed v%d probed: no bin has %d tokens yet", version, ctl.minTokens());
            } else if (p5[worst] >= ctl.tau() + ctl.hysteresis()) {
                inUse = true;
                reason = String.format(Locale.ROOT, "compressed v%d: every judged bin's p5 α ≥ τ + hysteresis %.3f (lowest %.3f, bin %d, %d tokens): in use",
                        version, ctl.tau() + ctl.hysteresis(), p5[worst], worst, tokens[worst]);
            } else {
                reason = String.format(Locale.ROOT, "compressed v%d probed: bin %d p5 α %.3f < τ + hysteresis %.3f",
                        version, worst, p5[worst], ctl.tau() + ctl.hysteresis());
            }
        }
        return new Decision(inUse, inUse != was, reason, p5, tokens);
    }

    /**
     * New settings (live tuning). τ, margin, hysteresis and the token and window counts apply from
     * the next tick with the tails kept; a new bin width drops them (bins no longer line up).
     */
    public void retune(BudgetController.Settings controller, Settings settings) {
        if (controller.binWidth() != tails.binWidth()) {
            tails.clear(controller.binWidth());
        }
        this.ctl = controller;
        this.s = settings;
        if (!settings.on()) {
            inUse = false;
            reason = "compressed rollout off";
        }
    }

    /** The judged bin (≥ min-tokens) with the lowest p5, or −1 when no bin is judged. */
    private int worstJudged(double[] p5, long[] tokens) {
        int worst = -1;
        for (int bin = 0; bin < p5.length; bin++) {
            if (tokens[bin] >= ctl.minTokens() && (worst < 0 || p5[bin] < p5[worst])) {
                worst = bin;
            }
        }
        return worst;
    }

    private static String pct(double share) {
        return String.format(Locale.ROOT, "%.0f %%", 100 * share);
    }
}
