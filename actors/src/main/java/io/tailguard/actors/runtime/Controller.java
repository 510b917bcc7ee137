package io.tailguard.actors.runtime;

import io.tailguard.model.ModelConfig;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
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
import java.util.List;

/**
 * The controller (a cluster singleton): turns messages into calls on plain objects, the leases
 * ({@link Leasing}, {@link LeaseBook}), the plain policy's schedule ({@link BudgetController}), the
 * rollout options, each a weight format with its own schedule, and the one in use ({@link OptionBook}
 * around the {@link io.tailguard.rollout.sparse.ApproximationBudget}), the live tuning ({@link TuningBook}), its files ({@link ControllerFiles}:
 * schedule.conf on this thread before a lease carries a version, state.json off it, before a tune is
 * answered and on stop) and its logs and metrics ({@link ControllerTelemetry}).
 */
public final class Controller extends AbstractBehavior<Controller.Command> {

    public sealed interface Command permits RequestWork, LeaseDone, LeaseOversized, TailReport, BufferDepth, PolicyPublished,
            CompressedPublished, Tune, GetStatus, WantSettings, Tick, Flush, Listed, RolloutTimed, CompressionJobs, HoldLeases {}

    /** The compression worker's failures after a job (success or failure), for `status`. */
    record CompressionJobs(ControllerStatus.Failures failures) implements Command, Wire {}

    /** A worker with capacity asks for a lease. */
    public record RequestWork(String worker, ActorRef<RolloutWorker.Command> replyTo) implements Command, Wire {}

    public record LeaseDone(long lease, String worker) implements Command, Wire {}

    /**
     * A worker did not send a lease's trajectories: they are over tailguard.cluster.max-message-size
     * ({@code refusal} says by how much). The lease stays open, times out and is issued again; enough
     * of these in a row stop the run.
     */
    public record LeaseOversized(long lease, String worker, String refusal) implements Command, Wire {}

    /**
     * α tails of one lease: under the schedule rolled out with, and the shadow replay (may be null).
     * tokens and decodeSeconds: the lease's generated tokens and its generation seconds (prefill and
     * decode, without the dense reference of a lease that measured the speedup): the option's measured speed.
     * compressedVersion: the compressed version that sampled, or −1 when the policy itself did;
     * format: its option's label ({@link CompressedPublished#format()}, "+kv16" added on a float16
     * cache; "" for the policy on a float32 cache, "plain+kv16" on a float16 one).
     */
    public record TailReport(String worker, ScheduleSpec used, byte[] tails, ScheduleSpec shadow, byte[] shadowTails,
                             long tokens, double decodeSeconds, long compressedVersion, String format) implements Command, Wire {}

    public record BufferDepth(int groups) implements Command, Wire {}

    /** From the learner: no new lease while hold is true (a held-out evaluation), leasing resumes at false. */
    public record HoldLeases(boolean hold) implements Command, Wire {}

    /** A lease's rollout time and, when measured, its in-run speedup: to the metrics and the run observers. */
    public record RolloutTimed(RunObserver.Rollout rollout) implements Command, Wire {}

    /** Live tuning: key=value pairs ({@link LiveKey}). fromFile: an edit of the watched file, which changes the configured values. */
    public record Tune(String[] keys, String[] values, boolean fromFile, ActorRef<TuneResult> replyTo) implements Command, Wire {}

    /**
     * A tune's outcome. persisted: the settings after it are in controller/state.json, so they outlive
     * the controller; false for an accepted change whose write failed (it runs, the message says it
     * was not persisted) and for a refused one (nothing changed).
     */
    public record TuneResult(boolean accepted, String message, long scheduleVersion, long settingsVersion, boolean persisted)
            implements Wire {
        /** This accepted tuning, whose state could not be written: it runs, but a restarted controller would not have it. */
        TuneResult notPersisted(Throwable failed) {
            Throwable cause = failed instanceof java.util.concurrent.CompletionException && failed.getCause() != null
                    ? failed.getCause() : failed;
            return new TuneResult(true, message + "; NOT persisted (" + cause.getMessage()
                    + "): running now, but a restarted controller would not have it", scheduleVersion, settingsVersion, false);
        }
    }

    record GetStatus(ActorRef<ControllerStatus> replyTo) implements Command, Wire {}

    /** A buffer or learner (just started, or restarted) wants the current {@link LiveSettings}, now and after every change. */
    public record WantSettings(ActorRef<LiveSettings> replyTo) implements Command, Wire {}

    enum Tick implements Command { INSTANCE }

    /** Time to write controller/state.json (a change was made since the last write). */
    enum Flush implements Command { INSTANCE }

    /** A receptionist listing: observers, buffers or learners (one adapter per message class, so one record). */
    record Listed(Receptionist.Listing listing) implements Command {}

    /** The dispatcher for blocking file writes (actors' reference.conf). */
    static final String BLOCKING_IO = "tailguard.blocking-io";

    /**
     * The controller behaviour. It rebuilds its state when it starts (schedule, prompt cursor, open
     * leases' groups, live tuning, newest policy and compressed version from its files and the store),
     * so a singleton that moves to another node carries on where it stopped.
     */
    public static Behavior<Command> create(RunSettings settings, ModelConfig model, Path start, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new Controller(ctx, timers, settings, model,
                TailguardNode.startSchedule(settings), start, metrics)));
    }

    private final RunSettings s;
    private final ControllerTelemetry telemetry;
    private final TimerScheduler<Command> timers;
    private final TuningBook tuning;
    private final BudgetController budgets;
    private final OptionBook options;
    /** The compression worker's failures as it last reported them (none before its first job). */
    private ControllerStatus.Failures compressionJobs;
    private final LeaseBook<RequestWork> leases;
    private final Leasing leasing;
    private final ControllerFiles files;
    private final FailureStreak oversized;
    private final Subscribers subscribers = new Subscribers();

    private Controller(ActorContext<Command> ctx, TimerScheduler<Command> timers, RunSettings s, ModelConfig model,
                       Schedule start, Path startCheckpoint, NodeMetrics metrics) {
        super(ctx);
        this.s = s;
        this.telemetry = new ControllerTelemetry(metrics, ctx.getLog(), new CostModel(model, CostModel.Machine.loadOrDefault(
                CostModel.Machine.defaultPath()), s.rollout().promptsPerLease() * s.rollout().groupSize()),
                (s.train().contextMin() + s.train().contextMax()) / 2, s.train().longestSequence() - s.train().contextMax(),
                s.rollout().groupSize());
        this.timers = timers;
        this.files = new ControllerFiles(s, ctx.getSystem().dispatchers().lookup(DispatcherSelector.fromConfig(BLOCKING_IO)), ctx.getLog(),
                StateWriter.Retry.of(s.bounds()), new FailureStreak("tailguard.controller.max-state-write-failures",
                        s.bounds().maxStateWriteFailures(), ctx.getLog(), metrics.stateWriteFailures::inc, RunStop.of(ctx.getSystem())::stop));
        this.oversized = new FailureStreak("tailguard.cluster.max-oversized-leases", s.bounds().maxOversizedLeases(), ctx.getLog(),
                () -> { }, RunStop.of(ctx.getSystem())::stop);
        this.compressionJobs = new ControllerStatus.Failures(0, 0,
                s.bounds().maxCompressionFailures() == Integer.MAX_VALUE ? 0 : s.bounds().maxCompressionFailures(), null);
        ControllerState saved = ControllerState.read(s);
        this.tuning = TuningBook.start(s, saved, ctx.getLog());
        this.budgets = new BudgetController(tuning.controller(), start);
        this.options = new OptionBook(budgets, tuning.option(), telemetry::predictedCost, s.rollout().kvCacheChosen(),
                System.nanoTime());
        options.resume(ControllerFiles.readOptionSchedules(s));
        tuning.applyChangedSince(a -> apply(a).version(), budgets.schedule().version(), ctx.getLog());
        Path store = s.train().out().resolve("store");
        this.leasing = Leasing.start(s, saved, options, CheckpointStore.latest(store, startCheckpoint));
        this.leases = leasing.book();
        timers.startTimerAtFixedRate(Tick.INSTANCE, s.window());
        // buffers and learners get the live settings when they appear (a controller that moved to
        // another node finds them here); a restarted one asks (WantSettings)
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Listed::new);
        Subscribers.KEYS.forEach(key -> ctx.getSystem().receptionist().tell(Receptionist.subscribe(key, listings)));
        exportSchedule();
        CompressedPublished c = CheckpointStore.latestCompressed(store);
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
                .onMessage(RequestWork.class, r -> send(List.of(new Leasing.Issued(r, leasing.request(r, System.nanoTime())))))
                .onMessage(LeaseDone.class, this::onLeaseDone)
                .onMessage(LeaseOversized.class, o -> {
                    oversized.failed("lease " + o.lease() + " of " + o.worker() + " was not delivered: " + o.refusal());
                    return this;
                })
                .onMessage(TailReport.class, r -> {
                    telemetry.tokens(options.report(r), r.tokens());
                    return this;
                })
                .onMessage(RolloutTimed.class, r -> {
                    telemetry.rollout(r.rollout());
                    options.measured(r.rollout());
                    subscribers.observe(r.rollout());
                    return this;
                })
                .onMessage(BufferDepth.class, d -> send(leasing.bufferDepth(d.groups(), System.nanoTime())))
                .onMessage(HoldLeases.class, h -> send(leasing.hold(h.hold(), System.nanoTime())))
                .onMessage(PolicyPublished.class, p -> send(leasing.policy(p, System.nanoTime())))
                .onMessage(CompressedPublished.class, this::offer)
                .onMessage(CompressionJobs.class, j -> {
                    compressionJobs = j.failures();
                    return this;
                })
                .onMessage(Tune.class, this::onTune)
                .onMessage(GetStatus.class, this::onStatus)
                .onMessage(WantSettings.class, w -> {
                    subscribers.subscribe(w.replyTo(), tuning.live(), getContext()::watch);
                    return this;
                })
                .onMessage(Tick.class, t -> onTick())
                .onMessage(Flush.class, f -> persist())
                .onMessage(Listed.class, l -> {
                    subscribers.listed(l.listing(), tuning.live(), getContext()::watch);
                    return this;
                })
                .onSignal(Terminated.class, x -> {
                    subscribers.stopped(x.getRef());
                    return this;
                })
                .onSignal(PostStop.class, x -> {
                    persist();
                    files.flush();
                    return this;
                })
                .build();
    }

    /** Sends the leases issued (a null work: the worker waits for leasing to resume). */
    private Behavior<Command> send(List<Leasing.Issued> issued) {
        for (Leasing.Issued i : issued) {
            if (i.work() != null) {
                telemetry.issued(i.work(), leases.openLeases());
                i.request().replyTo().tell(i.work());
                changed();
            }
        }
        return this;
    }

    private Behavior<Command> onLeaseDone(LeaseDone d) {
        boolean open = leases.done(d.lease());
        oversized.succeeded();
        telemetry.done(open, leases.openLeases());
        if (open) {
            changed();
            // its groups are in the buffer's depth now, no longer in flight: leasing may resume
            send(leasing.leaseClosed(System.nanoTime()));
        }
        return this;
    }

    /** A compressed version: the compressed option from now on when newer than the one held. */
    private Behavior<Command> offer(CompressedPublished c) {
        if (options.offer(c)) {
            telemetry.offered(c, options.settings(), options.reason());
        }
        return this;
    }

    private Behavior<Command> onTick() {
        long now = System.nanoTime();
        List<LeaseBook.Lease> expired = leases.expire(now);
        for (LeaseBook.Lease l : expired) {
            telemetry.expired(l);
            changed();
        }
        if (!expired.isEmpty()) {
            send(leasing.leaseClosed(now));   // their groups are no longer in flight
        }
        telemetry.openLeases(leases.openLeases());
        // every option's budget controller decides on its own tails, then the option in use is chosen;
        // switched off, the controller still closes windows and reports their tails, but holds the schedules
        PolicyPublished policy = leasing.policy();
        OptionBook.Window ow = options.tick(now, policy == null ? 0 : policy.version(), s.adapt());
        BudgetController.Decision d = ow.decision().plain();
        telemetry.window(ow.decision(), d);
        exportSchedule();
        var chosen = ow.decision().chosen();
        subscribers.window(RunObserver.window(System.currentTimeMillis(), d, budgets.settings().tau(),
                telemetry.predictedSpeedup(budgets.schedule()), options.version(), ow,
                telemetry.predictedSpeedup(chosen.format(), chosen.schedule())));
        return this;
    }

    /** An accepted tuning to the engines, and to the buffers and learners when their settings changed. */
    private Schedule apply(TuningBook.Applied a) {
        Schedule after = a.applyTo(budgets, options);
        if (a.runtimeChanged()) {
            subscribers.settings(a.live());
        }
        return after;
    }

    /** The state changed: controller/state.json is written shortly (one write for a burst of changes). */
    private void changed() {
        if (files.changed()) {
            timers.startSingleTimer(Flush.INSTANCE, ControllerFiles.DELAY);
        }
    }

    /** The prompt cursor, every group not yet delivered and the live tuning, written off this thread (one write for a burst). */
    private Behavior<Command> persist() {
        files.state(tuning.state(leases.nextGroup(), leases.undelivered()));
        return this;
    }

    private void exportSchedule() {
        telemetry.schedule(budgets, tuning.live().version());
        files.schedule(budgets.schedule());
        files.optionSchedules(options.compressedSchedules());
    }

    /** Validates the whole request first (all or nothing), then applies it as a new settings version, logged old -> new. */
    private Behavior<Command> onTune(Tune t) {
        TuningBook.Applied a;
        try {
            a = tuning.tune(LiveTuning.request(t.keys(), t.values()), t.fromFile());
        } catch (IllegalArgumentException e) {
            getContext().getLog().warn("tune refused: {}", e.getMessage());
            t.replyTo().tell(new TuneResult(false, e.getMessage(), budgets.schedule().version(), tuning.live().version(), false));
            return this;
        }
        long before = budgets.schedule().version();
        long after = a.changed() ? apply(a).version() : before;
        String msg = a.changed() ? a.message(before, after) : "no change (every value is the running one)";
        if (a.changed()) {
            getContext().getLog().info("tune: {}", msg);
            exportSchedule();
        }
        // answered once the tuning is in the state file (written off this thread): an accepted tuning
        // outlives a kill; one whose write failed is answered as running but not persisted
        TuneResult result = new TuneResult(true, msg, after, tuning.live().version(), true);
        org.slf4j.Logger log = getContext().getLog();
        files.state(tuning.state(leases.nextGroup(), leases.undelivered())).whenComplete((ok, failed) -> {
            TuneResult r = failed == null ? result : result.notPersisted(failed);
            if (failed != null) {
                log.error("tune: {}", r.message());
            }
            t.replyTo().tell(r);
        });
        return this;
    }

    private Behavior<Command> onStatus(GetStatus g) {
        long policy = leasing.policy() == null ? 0 : leasing.policy().version();
        g.replyTo().tell(ControllerStatus.of(budgets, telemetry.predictedSpeedup(budgets.schedule()), leasing, options.view(policy),
                options.rate(), options.approximation(policy, telemetry::predictedSpeedup), tuning,
                TailguardNode.memberLines(Cluster.get(getContext().getSystem())), files.failures(), compressionJobs));
        return this;
    }
}
