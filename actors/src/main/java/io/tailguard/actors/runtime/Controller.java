package io.tailguard.actors.runtime;

import io.tailguard.model.ModelConfig;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.StreamSupport;

/**
 * The controller (a cluster singleton): owns the prompt stream and the leases ({@link LeaseBook}),
 * the sparsity schedule ({@link BudgetController}), the rollout options ({@link OptionBook} over the
 * compressed-actor guard) and the live tuning ({@link TuningBook}); this actor only turns messages
 * into calls on them. Workers pull work; each lease carries its prompt groups, the policy version,
 * the schedule, the shadow schedule and the compressed version to sample with (null: the policy). A
 * lease not done within the lease timeout goes back to the front of the queue. Tail reports feed
 * the budget controller (a compressed lease's, the guard); every window both decide, and a changed
 * schedule is a new version, logged, exported and sent with the next leases. Leasing pauses while
 * the trajectory buffer is full (backpressure). controller/state.json is written off this thread
 * ({@link StateWriter}), shortly after a change and when the controller stops.
 */
public final class Controller extends AbstractBehavior<Controller.Command> {

    public sealed interface Command permits RequestWork, LeaseDone, TailReport, BufferDepth, PolicyPublished,
            CompressedPublished, Tune, GetStatus, WantSettings, Tick, Flush, Listed {}

    /** A worker with capacity asks for a lease. */
    public record RequestWork(String worker, ActorRef<RolloutWorker.Command> replyTo) implements Command, Wire {}

    public record LeaseDone(long lease, String worker) implements Command, Wire {}

    /**
     * α tails of one lease: under the schedule rolled out with, and the shadow replay (may be null).
     * compressedVersion: the compressed version that sampled, or −1 when the policy itself did.
     */
    public record TailReport(String worker, ScheduleSpec used, byte[] tails, ScheduleSpec shadow, byte[] shadowTails,
                             long tokens, double decodeSeconds, long compressedVersion) implements Command, Wire {}

    public record BufferDepth(int groups) implements Command, Wire {}

    /** Live tuning: key=value pairs ({@link LiveKey}). fromFile: an edit of the watched file, which changes the configured values. */
    public record Tune(String[] keys, String[] values, boolean fromFile, ActorRef<TuneResult> replyTo) implements Command, Wire {}

    public record TuneResult(boolean accepted, String message, long scheduleVersion, long settingsVersion) implements Wire {}

    public record GetStatus(ActorRef<ControllerStatus> replyTo) implements Command, Wire {}

    /** A buffer or learner (just started, or restarted) wants the current {@link LiveSettings}, now and after every change. */
    public record WantSettings(ActorRef<LiveSettings> replyTo) implements Command, Wire {}

    enum Tick implements Command { INSTANCE }

    /** Time to write controller/state.json (a change was made since the last write). */
    enum Flush implements Command { INSTANCE }

    /** A receptionist listing: observers, buffers or learners (one adapter per message class, so one record). */
    record Listed(Receptionist.Listing listing) implements Command {}

    /** How long a change waits for more before the state file is written: bursts of leases are one write. */
    static final Duration PERSIST_DELAY = Duration.ofMillis(200);
    /** The dispatcher for blocking file writes (actors' reference.conf). */
    static final String BLOCKING_IO = "tailguard.blocking-io";

    /**
     * The controller behaviour. It rebuilds its state when it starts: the schedule from its persisted
     * copy (else the configured calibrated schedule, else dense), the prompt cursor, the groups of open
     * leases (issued again first) and the live tuning from its state file, and the policy from the
     * newest complete version in the checkpoint store (else the starting checkpoint as version 0). So a
     * singleton that moves to another node after its node died carries on where it stopped.
     */
    public static Behavior<Command> create(RunSettings settings, ModelConfig model, Path start, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new Controller(ctx, timers, settings, model,
                TailguardNode.startSchedule(settings), start, metrics)));
    }

    private final RunSettings s;
    private final NodeMetrics metrics;
    private final TimerScheduler<Command> timers;
    private final Prompts prompts;
    private final TuningBook tuning;
    private final BudgetController budgets;
    private final OptionBook options;
    private final LeaseBook<RequestWork> leases;
    private final CostModel cost;
    private final StateWriter writer;
    private final List<ActorRef<RunObserver.Event>> observers = new ArrayList<>();
    private final Set<ActorRef<LiveSettings>> liveSubscribers = new LinkedHashSet<>();
    private PolicyPublished policy;
    private int bufferGroups;
    private long persistedVersion = -1;
    private boolean flushPending;

    private Controller(ActorContext<Command> ctx, TimerScheduler<Command> timers, RunSettings s, ModelConfig model,
                       Schedule start, Path startCheckpoint, NodeMetrics metrics) {
        super(ctx);
        this.s = s;
        this.metrics = metrics;
        this.timers = timers;
        this.prompts = new Prompts(s.train().task(), s.train().seed(), s.train().contextMin(), s.train().contextMax());
        this.writer = new StateWriter(ctx.getSystem().dispatchers().lookup(DispatcherSelector.fromConfig(BLOCKING_IO)), ctx.getLog());
        ControllerState saved = ControllerState.read(s);
        this.tuning = new TuningBook(s.controller(), new LiveSettings(0, s.buffer().staleness(), s.learner().lr(), s.learner().distill()),
                s.compression().guard(), s.train().contextMax(), saved);
        if (tuning.notRestored() != null) {
            ctx.getLog().warn("controller: the saved tuning {} does not apply to this configuration ({}); the configured values stand "
                    + "(settings v{})", saved.tuned(), tuning.notRestored(), tuning.live().version());
        }
        this.budgets = new BudgetController(tuning.controller(), start);
        this.options = new OptionBook(tuning.controller(), tuning.option(), System.nanoTime());
        this.cost = new CostModel(model, CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()),
                CostModel.DEFAULT_DENSE_LAYERS, s.rollout().promptsPerLease() * s.rollout().groupSize());
        if (!tuning.restored().isEmpty()) {
            ctx.getLog().info("controller: live tuning restored (settings v{}): {}", tuning.live().version(), String.join(", ", tuning.restored()));
        }
        Map<String, String> since = new LinkedHashMap<>(tuning.changedSince());
        try {
            Schedule before = budgets.schedule();
            TuningBook.Applied a = tuning.applyChangedSince();
            if (a != null) {
                Schedule after = apply(a);
                ctx.getLog().info("controller: the configuration changed {} since they were tuned; its values stand: {}; settings v{}{}",
                        since.keySet(), String.join(", ", a.plan().changes()), a.live().version(),
                        after.version() != before.version() ? "; schedule v" + after.version() : "");
            }
        } catch (IllegalArgumentException e) {
            ctx.getLog().warn("controller: the configuration changed {} since they were tuned, but its values {} do not "
                    + "go with the rest of the tuning ({}); the tuned values stay", since.keySet(), since, e.getMessage());
        }
        this.leases = new LeaseBook<>(s.rollout().promptsPerLease(), s.rollout().leaseTimeout().toNanos(),
                saved == null ? 0 : saved.nextGroup(), saved == null ? new long[0] : saved.openGroups());
        timers.startTimerAtFixedRate(Tick.INSTANCE, s.window());
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Listed::new);
        // buffers and learners get the live settings when they appear (a controller that moved to
        // another node finds them here); a restarted one asks (WantSettings)
        for (var key : List.of(RunObserver.KEY, TrajectoryBuffer.KEY, Learner.KEY)) {
            ctx.getSystem().receptionist().tell(Receptionist.subscribe(key, listings));
        }
        exportSchedule();
        this.policy = CheckpointStore.latest(s.train().out().resolve("store"), startCheckpoint);
        CompressedPublished c = CheckpointStore.latestCompressed(s.train().out().resolve("store"));
        if (c != null) {
            offer(c); // a controller that moved to another node finds the newest compressed version
        }
        ctx.getLog().info("controller up: schedule v{} {}; {}", budgets.schedule().version(), budgets.schedule(), saved == null
                ? "fresh start" : "resumed at group " + leases.nextGroup() + " with " + leases.toReissue() + " groups to re-issue");
        changed();
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(RequestWork.class, r -> {
                    if (!leasing(r)) {
                        leases.park(r.worker(), r); // answered when a policy exists and the buffer drains
                    }
                    return this;
                })
                .onMessage(LeaseDone.class, this::onLeaseDone)
                .onMessage(TailReport.class, this::onTailReport)
                .onMessage(BufferDepth.class, d -> {
                    bufferGroups = d.groups();
                    leases.drain(this::leasing);
                    return this;
                })
                .onMessage(PolicyPublished.class, p -> {
                    if (policy == null || p.version() > policy.version()) {
                        policy = p;
                    }
                    leases.drain(this::leasing);
                    return this;
                })
                .onMessage(CompressedPublished.class, c -> {
                    offer(c);
                    return this;
                })
                .onMessage(Tune.class, this::onTune)
                .onMessage(GetStatus.class, this::onStatus)
                .onMessage(WantSettings.class, w -> {
                    subscribe(w.replyTo());
                    return this;
                })
                .onMessage(Tick.class, t -> onTick())
                .onMessage(Flush.class, f -> {
                    flushPending = false;
                    persist();
                    return this;
                })
                .onMessage(Listed.class, this::onListed)
                .onSignal(Terminated.class, x -> {
                    liveSubscribers.remove(x.getRef()); // a buffer or learner that stopped
                    return this;
                })
                .onSignal(PostStop.class, x -> {
                    persist();
                    writer.flush();
                    return this;
                })
                .build();
    }

    /** Leases to the worker unless leasing pauses (no policy yet, or the buffer is full); false then. */
    private boolean leasing(RequestWork r) {
        if (policy == null || bufferGroups >= s.buffer().maxGroups()) {
            return false;
        }
        LeaseBook.Lease l = leases.issue(r.worker(), System.nanoTime());
        Prompt[] ps = new Prompt[l.groups().length];
        for (int i = 0; i < ps.length; i++) {
            ps[i] = prompts.of(l.groups()[i]);
        }
        metrics.leases.labelValues("issued").inc();
        metrics.leasesOpen.set(leases.openLeases());
        changed();
        Schedule sched = budgets.schedule();
        CompressedPublished actor = options.choose(policy.version());
        // a compressed lease's tails judge the compressed weights, not a cheaper schedule: no shadow
        Schedule shadow = actor == null && s.rollout().shadowFraction() > 0
                && !sched.equals(budgets.shadowSchedule().withVersion(sched.version())) ? budgets.shadowSchedule() : null;
        metrics.optionLeases.labelValues(actor == null ? "plain" : "compressed").inc();
        r.replyTo().tell(new RolloutWorker.Work(l.id(), l.groups(), ps, policy, ScheduleSpec.of(sched),
                shadow == null ? null : ScheduleSpec.of(shadow), s.train().seed() * 1_000_003L + l.id(), actor));
        return true;
    }

    private Behavior<Command> onLeaseDone(LeaseDone d) {
        if (leases.done(d.lease())) {
            metrics.leases.labelValues("done").inc();
            changed();
        } else {
            metrics.leases.labelValues("late").inc(); // re-issued already; the buffer dedups its groups
        }
        metrics.leasesOpen.set(leases.openLeases());
        return this;
    }

    private Behavior<Command> onTailReport(TailReport r) {
        Schedule used = r.used() == null ? null : r.used().toSchedule();
        TailStats tails = r.tails() == null ? null : TailStats.fromBytes(r.tails());
        boolean compressed = options.report(r.compressedVersion(), used, tails, r.tokens());
        metrics.optionTokens.labelValues(compressed ? "compressed" : "plain").inc(r.tokens());
        if (!compressed) {
            budgets.report(used, tails, r.shadow() == null ? null : r.shadow().toSchedule(),
                    r.shadowTails() == null ? null : TailStats.fromBytes(r.shadowTails()));
        }
        return this;
    }

    /** A compressed version: the compressed option from now on when newer than the one held. */
    private void offer(CompressedPublished c) {
        if (options.offer(c)) {
            metrics.compressedRolloutVersion.set(c.version());
            getContext().getLog().info("compressed rollout option: {} (KL {} per token){}", c.describe(), c.kl(),
                    options.settings().on() ? "; " + options.reason() : "; compressed rollout is off");
        }
    }

    private Behavior<Command> onTick() {
        long now = System.nanoTime();
        for (LeaseBook.Lease l : leases.expire(now)) {
            metrics.leases.labelValues("reissued").inc();
            getContext().getLog().warn("lease {} of {} timed out; its {} groups go to the next worker", l.id(), l.worker(), l.groups().length);
            changed();
        }
        metrics.leasesOpen.set(leases.openLeases());
        // the compressed option is judged at the budgets its window ran under, before they change
        OptionBook.Window ow = options.tick(now, policy == null ? 0 : policy.version(), budgets.schedule());
        if (ow.decision().changed()) {
            getContext().getLog().info("rollout option: {}", ow.decision().reason());
        }
        metrics.compressedOption(ow.decision());
        BudgetController.Decision d = budgets.tick();
        for (BudgetController.Change c : d.changes()) {
            getContext().getLog().info("schedule v{}: bin {} budget {} -> {}: {}", d.schedule().version(), c.bin(), c.from(), c.to(), c.reason());
            metrics.scheduleChanges.labelValues(c.to() > c.from() ? "up" : "down").inc();
        }
        exportSchedule();
        RunObserver.Window w = RunObserver.window(System.currentTimeMillis(), d, budgets.settings().tau(), predictedSpeedup(),
                options.version(), ow);
        observers.forEach(o -> o.tell(w));
        return this;
    }

    private double predictedSpeedup() {
        return cost.predictedSpeedup(budgets.schedule(), (s.train().contextMin() + s.train().contextMax()) / 2, 16);
    }

    /** An accepted tuning to the engines: controller keys retune the budget controller (a new schedule version), the rest the guard and the buffers and learners. */
    private Schedule apply(TuningBook.Applied a) {
        if (a.plan().controller() != null) {
            budgets.retune(a.plan().controller());
        }
        options.retune(budgets.settings(), a.plan().compression());
        if (a.runtimeChanged()) {
            liveSubscribers.forEach(r -> r.tell(a.live()));
        }
        return budgets.schedule();
    }

    /** Where the controller keeps its current schedule, so a restarted singleton resumes it. */
    static Path persistedSchedule(RunSettings s) {
        return s.train().out().resolve("controller").resolve("schedule.conf");
    }

    /** The state changed: controller/state.json is written shortly (one write for a burst of changes). */
    private void changed() {
        if (!flushPending) {
            flushPending = true;
            timers.startSingleTimer(Flush.INSTANCE, PERSIST_DELAY);
        }
    }

    /** The prompt cursor, every group not yet delivered (the re-issue queue, open leases) and the live tuning, written off this thread. */
    private void persist() {
        ControllerState st = tuning.state(leases.nextGroup(), leases.undelivered());
        writer.submit(ControllerState.file(s), st::json);
    }

    private void exportSchedule() {
        Schedule sched = budgets.schedule();
        metrics.controllerSchedule(sched, budgets.p5PerBin(), budgets.settings().tau(), predictedSpeedup(), tuning.live().version());
        if (sched.version() != persistedVersion) {
            String text = sched.toHocon();
            writer.submit(persistedSchedule(s), () -> text);
            persistedVersion = sched.version();
        }
    }

    /** Validates the whole request first (all or nothing), then applies it as a new settings version, logged old -> new. */
    private Behavior<Command> onTune(Tune t) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (int i = 0; i < t.keys().length; i++) {
            kv.put(t.keys()[i], t.values()[i]);
        }
        TuningBook.Applied a;
        try {
            a = tuning.tune(kv, t.fromFile());
        } catch (IllegalArgumentException e) {
            getContext().getLog().warn("tune refused: {}", e.getMessage());
            t.replyTo().tell(new TuneResult(false, e.getMessage(), budgets.schedule().version(), tuning.live().version()));
            return this;
        }
        changed();
        if (!a.changed()) {
            t.replyTo().tell(new TuneResult(true, "no change (every value is the running one)", budgets.schedule().version(),
                    tuning.live().version()));
            return this;
        }
        Schedule before = budgets.schedule();
        Schedule after = apply(a);
        String msg = "applied " + String.join(", ", a.plan().changes()) + "; settings v" + a.live().version()
                + (after.version() != before.version() ? "; schedule v" + after.version() : "");
        getContext().getLog().info("tune: {}", msg);
        exportSchedule();
        t.replyTo().tell(new TuneResult(true, msg, after.version(), a.live().version()));
        return this;
    }

    private void subscribe(ActorRef<LiveSettings> r) {
        if (liveSubscribers.add(r)) {
            getContext().watch(r);
        }
        r.tell(tuning.live());
    }

    private Behavior<Command> onStatus(GetStatus g) {
        Schedule sched = budgets.schedule();
        String[] members = StreamSupport.stream(Cluster.get(getContext().getSystem()).state().getMembers().spliterator(), false)
                .map(m -> m.address() + " " + m.status() + " " + m.getRoles()).toArray(String[]::new);
        g.replyTo().tell(new ControllerStatus(
                new ControllerStatus.Schedule(sched.version(), sched.budgets(), budgets.p5PerBin(), budgets.settings().tau(), predictedSpeedup()),
                new ControllerStatus.Run(policy == null ? -1 : policy.version(), leases.openLeases(), leases.nextGroup(), bufferGroups,
                        options.rate(), members),
                tuning.live(), tuning.tuned().toArray(TuningBook.Tuned[]::new), options.view()));
        return this;
    }

    private Behavior<Command> onListed(Listed c) {
        if (c.listing().isForKey(TrajectoryBuffer.KEY)) {
            c.listing().getServiceInstances(TrajectoryBuffer.KEY).forEach(b -> subscribe(b.narrow()));
        } else if (c.listing().isForKey(Learner.KEY)) {
            c.listing().getServiceInstances(Learner.KEY).forEach(l -> subscribe(l.narrow()));
        } else {
            observers.clear();
            observers.addAll(c.listing().getServiceInstances(RunObserver.KEY));
        }
        return this;
    }
}
