package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Prompt;

import java.util.ArrayList;
import java.util.List;

/**
 * What the controller leases, and when: a lease ({@link LeaseBook}) with its prompts, the policy to
 * roll out with, the rollout option from {@link OptionBook} (a compressed version, or null: the
 * policy) with that option's schedule and shadow schedule, and a seed of its own.
 * Leasing pauses while there is no policy yet, max-groups groups are on their way to the learner
 * (backpressure: the groups waiting in the trajectory buffer and those of the open leases, still
 * being rolled out), or the learner holds it (a held-out evaluation); a worker that asks meanwhile
 * waits, and is served when leasing resumes.
 *
 * <p>Open leases count because the buffer's depth arrives after the worker's next request: a
 * worker sends its groups to the buffer and asks again at once, so counting the buffer alone let
 * one lease more out than the bound, rolled out with a policy that the learner had moved past by two
 * versions when it trained on it. The buffer reports its new depth before it acknowledges the lease
 * (both from the buffer, in order), so a group is counted once or, between the two, twice: never
 * not at all.
 */
final class Leasing {
    /** A lease for a worker's request. */
    record Issued(Controller.RequestWork request, RolloutWorker.Work work) {}

    private final LeaseBook<Controller.RequestWork> book;
    private final Prompts prompts;
    private final OptionBook options;
    /** Whether the budget controller moves budgets (tailguard.controller.adapt). */
    private final boolean adapts;
    /** Shadow replays are asked for: only when the controller adapts (nothing else reads their tails). */
    private final boolean shadows;
    /** What each lease's sampling seed is drawn from (tailguard.train.sampling-seed). */
    private final long samplingSeed;
    private final int maxGroups;
    private PolicyPublished policy;
    private int bufferGroups;
    private boolean held;

    Leasing(LeaseBook<Controller.RequestWork> book, Prompts prompts, OptionBook options, RunSettings s, PolicyPublished policy) {
        this.book = book;
        this.prompts = prompts;
        this.options = options;
        this.adapts = s.adapt();
        this.shadows = s.adapt() && s.rollout().shadowFraction() > 0;
        this.samplingSeed = s.train().samplingSeed();
        this.maxGroups = s.buffer().maxGroups();
        this.policy = policy;
    }

    /** Leasing for the run's settings, from a previous controller's state (null: a fresh prompt stream). */
    static Leasing start(RunSettings s, ControllerState saved, OptionBook options, PolicyPublished policy) {
        LeaseBook<Controller.RequestWork> book = new LeaseBook<>(s.rollout().promptsPerLease(), s.rollout().leaseTimeout().toNanos(),
                saved == null ? 0 : saved.nextGroup(), saved == null ? new long[0] : saved.openGroups());
        return new Leasing(book, new Prompts(s.train().task(), s.train().seed(), s.train().contextMin(), s.train().contextMax()),
                options, s, policy);
    }

    /** The leases themselves. */
    LeaseBook<Controller.RequestWork> book() {
        return book;
    }

    /** A worker asks: its lease, or null when leasing pauses (it waits then, once however often it asks). */
    RolloutWorker.Work request(Controller.RequestWork r, long nowNanos) {
        if (paused()) {
            book.park(r.worker(), r);
            return null;
        }
        return lease(r.worker(), nowNanos);
    }

    /**
     * A newer policy is taken (an older one ignored); the waiting workers' leases, when leasing
     * resumes. Any announcement also lifts the learner's hold: the learner never announces while it
     * evaluates (its messages arrive in order), so one that comes while held is from a learner that
     * started again after it failed mid-evaluation, and would otherwise never release it.
     */
    List<Issued> policy(PolicyPublished p, long nowNanos) {
        if (policy == null || p.version() > policy.version()) {
            policy = p;
        }
        held = false;
        return drain(nowNanos);
    }

    /** The trajectory buffer's depth; the waiting workers' leases, when leasing resumes. */
    List<Issued> bufferDepth(int groups, long nowNanos) {
        bufferGroups = groups;
        return drain(nowNanos);
    }

    /** A lease was acknowledged or expired (its groups no longer in flight); the waiting workers' leases, when leasing resumes. */
    List<Issued> leaseClosed(long nowNanos) {
        return drain(nowNanos);
    }

    /** The learner holds leasing (true) or lets it go on; the waiting workers' leases, when leasing resumes. */
    List<Issued> hold(boolean hold, long nowNanos) {
        held = hold;
        return drain(nowNanos);
    }

    private List<Issued> drain(long nowNanos) {
        List<Issued> out = new ArrayList<>();
        book.drain(r -> !paused() && out.add(new Issued(r, lease(r.worker(), nowNanos))));
        return out;
    }

    private boolean paused() {
        return policy == null || held || bufferGroups + book.openGroups() >= maxGroups;
    }

    private RolloutWorker.Work lease(String worker, long nowNanos) {
        LeaseBook.Lease l = book.issue(worker, nowNanos);
        Prompt[] ps = new Prompt[l.groups().length];
        for (int i = 0; i < ps.length; i++) {
            ps[i] = prompts.of(l.groups()[i]);
        }
        // the option's own schedule and shadow: a compressed option steps its budgets down by its own replays
        OptionBook.Pick pick = options.choose(policy.version());
        Schedule sched = held(pick.schedule());
        Schedule shadow = shadows && !sched.equals(pick.shadow().withVersion(sched.version())) ? pick.shadow() : null;
        return new RolloutWorker.Work(l.id(), l.groups(), ps, policy, ScheduleSpec.of(sched),
                shadow == null ? null : ScheduleSpec.of(shadow), io.tailguard.rollout.tasks.PromptStreams.sampling(samplingSeed, l.id()),
                pick.compressed(), pick.halfCache());
    }

    /**
     * The schedule to lease. With the controller off and every bin on its top rung (a dense start),
     * the dense schedule itself: the bins end at the controller's context (the run's longest sequence), and a
     * position past the last one would take that bin's budget, so a long completion would be decoded
     * sparsely in a run meant to be dense. Its tails file under each bin's top rung as before.
     */
    private Schedule held(Schedule sched) {
        if (adapts) {
            return sched;
        }
        int[] b = sched.budgets();
        for (int i = 0; i < b.length; i++) {
            if (b[i] < (i + 1) * sched.binWidth()) {
                return sched;
            }
        }
        return Schedule.dense().withVersion(sched.version());
    }

    /** The newest policy, or null. */
    PolicyPublished policy() {
        return policy;
    }

    int bufferGroups() {
        return bufferGroups;
    }
}
