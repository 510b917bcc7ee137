package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CompressedActorGuard;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;

/**
 * The rollout options' accounting around the {@link CompressedActorGuard} (the engine that decides):
 * the compressed version offered, the rollout tokens of each option (this window and the whole run)
 * and the rollout rate over the last window, and the compressed option's last p5 α per bin. A
 * compressed lease's tails go to the guard; the caller gives a plain lease's to the budget controller.
 */
final class OptionBook {
    /** One window closed: the guard's decision, and the tokens each option rolled out in it. */
    record Window(CompressedActorGuard.Decision decision, long plainTokens, long compressedTokens) {}

    private final CompressedActorGuard guard;
    private CompressedPublished compressed;
    private double[] compressedP5 = new double[0];
    private long windowPlain;
    private long windowCompressed;
    private long plain;
    private long compressedTokens;
    private double rate;
    private long windowStartNanos;

    OptionBook(BudgetController.Settings controller, CompressedActorGuard.Settings settings, long nowNanos) {
        this.guard = new CompressedActorGuard(controller, settings);
        this.windowStartNanos = nowNanos;
    }

    /** A compressed version: the compressed option from now on when newer than the one held (then true). */
    boolean offer(CompressedPublished c) {
        if (!guard.offer(c.version())) {
            return false;
        }
        compressed = c;
        return true;
    }

    /** The compressed version a new lease samples with, or null: the policy itself. */
    CompressedPublished choose(long policyVersion) {
        return guard.choose(policyVersion) == CompressedActorGuard.Option.COMPRESSED ? compressed : null;
    }

    /**
     * A lease's tail report: a compressed lease's tails to the guard, a plain lease's (with its shadow
     * replay) to the budget controller. True when the compressed version sampled.
     */
    boolean report(Controller.TailReport r, BudgetController budgets) {
        Schedule used = r.used() == null ? null : r.used().toSchedule();
        TailStats tails = r.tails() == null ? null : TailStats.fromBytes(r.tails());
        if (report(r.compressedVersion(), used, tails, r.tokens())) {
            return true;
        }
        budgets.report(used, tails, r.shadow() == null ? null : r.shadow().toSchedule(),
                r.shadowTails() == null ? null : TailStats.fromBytes(r.shadowTails()));
        return false;
    }

    /**
     * A lease's tokens, and its tails when the compressed version sampled (compressedVersion >= 0;
     * then true: the tails are the guard's). False: a plain lease, whose tails are the budget controller's.
     */
    boolean report(long compressedVersion, Schedule used, TailStats tails, long tokens) {
        if (compressedVersion >= 0) {
            guard.report(compressedVersion, used, tails);
            windowCompressed += tokens;
            compressedTokens += tokens;
            return true;
        }
        windowPlain += tokens;
        plain += tokens;
        return false;
    }

    /**
     * Closes a window: the rollout rate over it, and the guard's decision at the budgets the window
     * ran under (call it before the budget controller's tick changes them).
     */
    Window tick(long nowNanos, long policyVersion, Schedule current) {
        rate = (windowPlain + windowCompressed) / Math.max(1e-9, (nowNanos - windowStartNanos) / 1e9);
        windowStartNanos = nowNanos;
        CompressedActorGuard.Decision d = guard.tick(policyVersion, current);
        compressedP5 = d.p5();
        Window w = new Window(d, windowPlain, windowCompressed);
        windowPlain = 0;
        windowCompressed = 0;
        return w;
    }

    void retune(BudgetController.Settings controller, CompressedActorGuard.Settings settings) {
        guard.retune(controller, settings);
    }

    CompressedActorGuard.Settings settings() {
        return guard.settings();
    }

    long version() {
        return guard.version();
    }

    String reason() {
        return guard.reason();
    }

    /** Rollout tokens per second, all options, over the last closed window. */
    double rate() {
        return rate;
    }

    /** The compressed option as status shows it. */
    ControllerStatus.CompressedOption view() {
        CompressedActorGuard.Settings g = guard.settings();
        long all = plain + compressedTokens;
        return new ControllerStatus.CompressedOption(g.on(), guard.version(), compressed == null ? "" : compressed.describe(), guard.inUse(),
                g.probeShare(), g.maxLag(), compressedP5, all == 0 ? 0 : compressedTokens / (double) all, guard.reason());
    }
}
