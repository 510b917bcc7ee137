package io.tailguard.actors.runtime;

import io.tailguard.model.ModelConfig;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CompressedActorGuard;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The controller (a cluster singleton): owns the prompt stream and the leases, and the sparsity
 * schedule. Workers pull work; each lease carries its prompt groups, the policy version to roll out
 * with, the schedule and the shadow schedule. A lease not done within the lease timeout goes back
 * to the front of the queue (the buffer trains a group at most once, so a late duplicate is
 * harmless). Tail reports feed the {@link BudgetController}; every window it decides, and a changed
 * schedule is a new version, logged with its reasons, exported, and sent with the next leases.
 * Leasing pauses while the trajectory buffer is full (backpressure).
 *
 * <p>Compressed weights are one more rollout option: the compression worker announces each
 * compressed version ({@link CompressedPublished}), and a {@link CompressedActorGuard} decides,
 * from the tails of the leases rolled out with it, whether it gets the bulk of the leases or only
 * its probe share; a lease names the compressed version it is to sample with (null: the policy).
 * Its tails go to the guard, never to the budget controller.
 */
public final class Controller extends AbstractBehavior<Controller.Command> {

    public sealed interface Command permits RequestWork, LeaseDone, TailReport, BufferDepth, PolicyPublished,
            CompressedPublished, Tune, GetStatus, WantSettings, Tick, Listed {}

    /** A worker with capacity asks for a lease. */
    public record RequestWork(String worker, ActorRef<RolloutWorker.Command> replyTo) implements Command, Wire {}

    public record LeaseDone(long lease, String worker) implements Command, Wire {}

    /**
     * α tails of one lease: under the schedule rolled out with, and the shadow replay (may be null).
     * compressedVersion: the compressed version that sampled (its tails are the compressed
     * option's), or −1 when the policy itself did.
     */
    public record TailReport(String worker, ScheduleSpec used, byte[] tails, ScheduleSpec shadow, byte[] shadowTails,
                             long tokens, double decodeSeconds, long compressedVersion) implements Command, Wire {}

    public record BufferDepth(int groups) implements Command, Wire {}

    /**
     * Live tuning: key=value pairs (the controller's keys, and the buffer's and learner's live keys,
     * see {@link LiveTuning}); answered with the outcome. fromFile: an edit of the watched
     * configuration file, which changes the configured values themselves (not a tuning away from them).
     */
    public record Tune(String[] keys, String[] values, boolean fromFile, ActorRef<TuneResult> replyTo) implements Command, Wire {}

    public record TuneResult(boolean accepted, String message, long scheduleVersion, long settingsVersion) implements Wire {}

    public record GetStatus(ActorRef<Status> replyTo) implements Command, Wire {}

    public record Status(long scheduleVersion, int[] budgets, double[] alphaP5, double tau, long policyVersion,
                         int leasesOpen, long groupsIssued, int bufferGroups, double rolloutTokensPerSecond,
                         double predictedSpeedup, String[] members, long settingsVersion, int staleness, double lr,
                         boolean distill, CompressedOption compressed, String[] tunedKeys, String[] tunedValues,
                         String[] tunedConfigured) implements Wire {}

    /**
     * The compressed rollout option as status shows it. version: the compressed version offered (−1:
     * none); inUse: it gets the bulk of the leases; alphaP5: its p5 α per bin at the current budgets
     * (NaN: no tokens); tokenShare: its share of all rollout tokens reported so far; reason: why the
     * last decision left it where it is.
     */
    public record CompressedOption(boolean on, long version, String describe, boolean inUse, double probeShare, int maxLag,
                         double[] alphaP5, double tokenShare, String reason) implements Wire {}

    /** A buffer or learner (just started, or restarted) wants the current {@link LiveSettings}, now and after every change. */
    public record WantSettings(ActorRef<LiveSettings> replyTo) implements Command, Wire {}

    enum Tick implements Command { INSTANCE }

    /** A receptionist listing: observers, buffers or learners (one adapter per message class, so one record). */
    record Listed(Receptionist.Listing listing) implements Command {}

    private record Lease(long id, String worker, long[] groups, long deadlineNanos) {}

    /**
     * The controller behaviour. It rebuilds its state when it starts: the schedule from its persisted
     * copy (else the configured calibrated schedule, else dense), the prompt cursor and the groups of
     * open leases from its state file (those groups are issued again first), and the policy from the
     * newest complete version in the checkpoint store (else the starting checkpoint as version 0), and
     * the live tuning from its state file (a key the configuration changed since stays configured). So
     * a singleton that moves to another node after its node died carries on where it stopped.
     */
    public static Behavior<Command> create(RunSettings settings, ModelConfig model, java.nio.file.Path start, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new Controller(ctx, timers, settings, model,
                TailguardNode.startSchedule(settings), start, metrics)));
    }

    private final RunSettings s;
    private final NodeMetrics metrics;
    private final Prompts prompts;
    private final BudgetController budgets;
    private final CompressedActorGuard guard;
    private final CostModel cost;
    private final Map<Long, Lease> leases = new LinkedHashMap<>();
    private final Deque<Long> reissue = new ArrayDeque<>();
    private final Deque<RequestWork> waiting = new ArrayDeque<>();
    private final List<ActorRef<RunObserver.Event>> observers = new ArrayList<>();
    private final Set<ActorRef<LiveSettings>> liveSubscribers = new java.util.LinkedHashSet<>();
    private LiveSettings live;
    /** Every live key's configured value: this node's configuration, as edits of the watched file change it. */
    private final Map<String, String> configured = new LinkedHashMap<>();
    /** Live keys a tune set away from the configuration: their values, and the configured values they replaced. */
    private final Map<String, String> tuned = new LinkedHashMap<>();
    private final Map<String, String> tunedFrom = new LinkedHashMap<>();
    private long nextGroup;
    private long nextLease = 1;
    private int bufferGroups;
    private double tau;
    private PolicyPublished policy;
    private long persistedVersion = -1;
    private long windowTokens;
    private double rolloutRate;
    private long lastTickNanos = System.nanoTime();
    /** The compressed option: the version offered, its last p5 per bin, rollout tokens per option (window, run). */
    private CompressedPublished compressed;
    private double[] compressedP5 = new double[0];
    private long windowPlainTokens;
    private long windowCompressedTokens;
    private long plainTokens;
    private long compressedTokens;

    private Controller(ActorContext<Command> ctx, TimerScheduler<Command> timers, RunSettings s, ModelConfig model,
                       Schedule start, java.nio.file.Path startCheckpoint, NodeMetrics metrics) {
        super(ctx);
        this.s = s;
        this.metrics = metrics;
        this.prompts = new Prompts(s.train().task(), s.train().seed(), s.train().contextMin(), s.train().contextMax());
        ControllerState saved = ControllerState.read(s);
        // The live tuning carries over a move: the controller starts with the settings the last one
        // ran with, then a key whose configured value changed since takes that value, as a change.
        long version = saved == null ? 0 : saved.settingsVersion();
        LiveSettings configuredLive = new LiveSettings(version, s.buffer().staleness(), s.learner().lr(), s.learner().distill());
        LiveTuning.values(s.controller(), configuredLive, s.compression().guard()).forEach((k, v) -> configured.put(k, String.valueOf(v)));
        LiveTuning.Plan previous = null;
        Map<String, String> since = new LinkedHashMap<>();
        if (saved != null && !saved.tuned().isEmpty()) {
            try {
                previous = LiveTuning.plan(s.controller(), configuredLive, s.compression().guard(), saved.tuned(),
                        s.train().contextMax());
                saved.tuned().forEach((k, v) -> {
                    String from = saved.tunedFrom().get(k);
                    if (!LiveTuning.same(configured.get(k), from)) {
                        since.put(k, configured.get(k));
                    }
                });
            } catch (IllegalArgumentException e) {
                ctx.getLog().warn("controller: the saved tuning {} does not apply to this configuration ({}); "
                        + "the configured values stand (settings v{})", saved.tuned(), e.getMessage(), version + 1);
                configuredLive = new LiveSettings(version + 1, configuredLive.staleness(), configuredLive.lr(), configuredLive.distill());
            }
        }
        BudgetController.Settings ctl = previous != null && previous.controller() != null ? previous.controller() : s.controller();
        this.budgets = new BudgetController(ctl, start);
        this.guard = new CompressedActorGuard(ctl, previous != null ? previous.compression() : s.compression().guard());
        this.cost = new CostModel(model, CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()),
                CostModel.DEFAULT_DENSE_LAYERS, s.rollout().promptsPerLease() * s.rollout().groupSize());
        this.tau = ctl.tau();
        this.live = previous != null ? previous.live() : configuredLive;
        if (previous != null) {
            record(previous);
            ctx.getLog().info("controller: live tuning restored (settings v{}): {}", version, String.join(", ", previous.changes()));
        }
        if (!since.isEmpty()) {
            try {
                Schedule before = budgets.schedule();
                LiveTuning.Plan p = LiveTuning.plan(budgets.settings(), live, guard.settings(), since, s.train().contextMax());
                Schedule after = apply(p);
                ctx.getLog().info("controller: the configuration changed {} since they were tuned; its values stand: {}; settings v{}{}",
                        since.keySet(), String.join(", ", p.changes()), live.version(),
                        after.version() != before.version() ? "; schedule v" + after.version() : "");
            } catch (IllegalArgumentException e) {
                ctx.getLog().warn("controller: the configuration changed {} since they were tuned, but its values {} do not "
                        + "go with the rest of the tuning ({}); the tuned values stay", since.keySet(), since, e.getMessage());
            }
        }
        timers.startTimerAtFixedRate(Tick.INSTANCE, s.window());
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Listed::new);
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(RunObserver.KEY, listings));
        // buffers and learners get the live settings when they appear (a controller that moved to
        // another node finds them here); a restarted one asks (WantSettings)
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(TrajectoryBuffer.KEY, listings));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(Learner.KEY, listings));
        exportSchedule(List.of());
        if (saved != null) {
            nextGroup = saved.nextGroup();
            for (long g : saved.openGroups()) {
                reissue.addLast(g);
            }
        }
        this.policy = CheckpointStore.latest(s.train().out().resolve("store"), startCheckpoint);
        CompressedPublished c = CheckpointStore.latestCompressed(s.train().out().resolve("store"));
        if (c != null) {
            offer(c); // a controller that moved to another node finds the newest compressed version
        }
        ctx.getLog().info("controller up: schedule v{} {}; {}", budgets.schedule().version(), budgets.schedule(),
                saved == null ? "fresh start" : "resumed at group " + nextGroup + " with " + reissue.size() + " groups to re-issue");
        persistState();
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(RequestWork.class, this::onRequestWork)
                .onMessage(LeaseDone.class, this::onLeaseDone)
                .onMessage(TailReport.class, this::onTailReport)
                .onMessage(BufferDepth.class, this::onBufferDepth)
                .onMessage(PolicyPublished.class, this::onPolicy)
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
                .onMessage(Listed.class, this::onListed)
                .onSignal(org.apache.pekko.actor.typed.Terminated.class, x -> {
                    liveSubscribers.remove(x.getRef()); // a buffer or learner that stopped
                    return this;
                })
                .build();
    }

    private Behavior<Command> onRequestWork(RequestWork r) {
        if (policy == null || bufferGroups >= s.buffer().maxGroups()) {
            waiting.removeIf(w -> w.worker().equals(r.worker())); // a worker that asks again waits once
            waiting.addLast(r); // answered when a policy exists and the buffer drains
            return this;
        }
        lease(r);
        return this;
    }

    private void lease(RequestWork r) {
        int n = s.rollout().promptsPerLease();
        long[] groups = new long[n];
        Prompt[] ps = new Prompt[n];
        for (int i = 0; i < n; i++) {
            groups[i] = reissue.isEmpty() ? nextGroup++ : reissue.removeFirst();
            ps[i] = prompts.of(groups[i]);
        }
        long id = nextLease++;
        leases.put(id, new Lease(id, r.worker(), groups, System.nanoTime() + s.rollout().leaseTimeout().toNanos()));
        metrics.leases.labelValues("issued").inc();
        persistState();
        metrics.leasesOpen.set(leases.size());
        Schedule sched = budgets.schedule();
        CompressedPublished actor = guard.choose(policy.version()) == CompressedActorGuard.Option.COMPRESSED ? compressed : null;
        // a compressed lease's tails judge the compressed weights, not a cheaper schedule: no shadow
        Schedule shadow = actor == null && s.rollout().shadowFraction() > 0
                && !sched.equals(budgets.shadowSchedule().withVersion(sched.version())) ? budgets.shadowSchedule() : null;
        metrics.optionLeases.labelValues(actor == null ? "plain" : "compressed").inc();
        r.replyTo().tell(new RolloutWorker.Work(id, groups, ps, policy, ScheduleSpec.of(sched),
                shadow == null ? null : ScheduleSpec.of(shadow), s.train().seed() * 1_000_003L + id, actor));
    }

    private void drainWaiting() {
        while (!waiting.isEmpty() && policy != null && bufferGroups < s.buffer().maxGroups()) {
            lease(waiting.removeFirst());
        }
    }

    private Behavior<Command> onLeaseDone(LeaseDone d) {
        if (leases.remove(d.lease()) != null) {
            metrics.leases.labelValues("done").inc();
            persistState();
        } else {
            metrics.leases.labelValues("late").inc(); // re-issued already; the buffer dedups its groups
        }
        metrics.leasesOpen.set(leases.size());
        return this;
    }

    private Behavior<Command> onTailReport(TailReport r) {
        windowTokens += r.tokens();
        if (r.compressedVersion() >= 0) {
            guard.report(r.compressedVersion(), r.used() == null ? null : r.used().toSchedule(),
                    r.tails() == null ? null : TailStats.fromBytes(r.tails()));
            windowCompressedTokens += r.tokens();
            compressedTokens += r.tokens();
            metrics.optionTokens.labelValues("compressed").inc(r.tokens());
            return this;
        }
        windowPlainTokens += r.tokens();
        plainTokens += r.tokens();
        metrics.optionTokens.labelValues("plain").inc(r.tokens());
        budgets.report(r.used() == null ? null : r.used().toSchedule(), r.tails() == null ? null : TailStats.fromBytes(r.tails()),
                r.shadow() == null ? null : r.shadow().toSchedule(), r.shadowTails() == null ? null : TailStats.fromBytes(r.shadowTails()));
        return this;
    }

    private Behavior<Command> onBufferDepth(BufferDepth d) {
        bufferGroups = d.groups();
        drainWaiting();
        return this;
    }

    /** A compressed version: the compressed option from now on when newer than the one held. */
    private void offer(CompressedPublished c) {
        if (!guard.offer(c.version())) {
            return;
        }
        compressed = c;
        metrics.compressedRolloutVersion.set(c.version());
        getContext().getLog().info("compressed rollout option: {} (KL {} per token){}", c.describe(), c.kl(),
                guard.settings().on() ? "; " + guard.reason() : "; compressed rollout is off");
    }

    private Behavior<Command> onPolicy(PolicyPublished p) {
        if (policy == null || p.version() > policy.version()) {
            policy = p;
        }
        drainWaiting();
        return this;
    }

    private Behavior<Command> onTick() {
        long now = System.nanoTime();
        rolloutRate = windowTokens / Math.max(1e-9, (now - lastTickNanos) / 1e9); // all workers, last window
        windowTokens = 0;
        lastTickNanos = now;
        List<Lease> expired = new ArrayList<>();
        for (Lease l : leases.values()) {
            if (now - l.deadlineNanos() > 0) {
                expired.add(l);
            }
        }
        for (int i = expired.size() - 1; i >= 0; i--) {
            Lease l = expired.get(i);
            leases.remove(l.id());
            for (int g = l.groups().length - 1; g >= 0; g--) {
                reissue.addFirst(l.groups()[g]);
            }
            metrics.leases.labelValues("reissued").inc();
            getContext().getLog().warn("lease {} of {} timed out; its {} groups go to the next worker", l.id(), l.worker(), l.groups().length);
        }
        metrics.leasesOpen.set(leases.size());
        if (!expired.isEmpty()) {
            persistState();
        }
        // the compressed option is judged at the budgets its window ran under, before they change
        CompressedActorGuard.Decision cd = guard.tick(policy == null ? 0 : policy.version(), budgets.schedule());
        compressedP5 = cd.p5();
        if (cd.changed()) {
            getContext().getLog().info("rollout option: {}", cd.reason());
        }
        metrics.compressedRolloutInUse.set(cd.inUse() ? 1 : 0);
        for (int i = 0; i < cd.p5().length; i++) {
            // NaN where the compressed option has no tokens (a new version starts with none)
            metrics.optionAlphaP5.labelValues("compressed", Integer.toString(i)).set(cd.p5()[i]);
        }
        BudgetController.Decision d = budgets.tick();
        if (d.changed()) {
            for (BudgetController.Change c : d.changes()) {
                getContext().getLog().info("schedule v{}: bin {} budget {} -> {}: {}", d.schedule().version(), c.bin(), c.from(), c.to(), c.reason());
                metrics.scheduleChanges.labelValues(c.to() > c.from() ? "up" : "down").inc();
            }
        }
        exportSchedule(d.changes());
        RunObserver.Window w = new RunObserver.Window(System.currentTimeMillis(), d.schedule().version(), d.schedule().budgets(),
                windowP5(d), windowTokens(d), tau, predictedSpeedup(), reasons(d.changes()),
                new RunObserver.OptionWindow(guard.version(), cd.inUse(), cd.p5(), windowPlainTokens, windowCompressedTokens,
                        cd.changed() ? cd.reason() : null));
        windowPlainTokens = 0;
        windowCompressedTokens = 0;
        for (ActorRef<RunObserver.Event> o : observers) {
            o.tell(w);
        }
        return this;
    }

    private static long[] windowTokens(BudgetController.Decision d) {
        long[] n = new long[d.schedule().binCount()];
        for (BudgetController.WindowTail t : d.window()) {
            if (t.bin() < n.length) {
                n[t.bin()] = t.tokens();
            }
        }
        return n;
    }

    private static double[] windowP5(BudgetController.Decision d) {
        double[] p = new double[d.schedule().binCount()];
        java.util.Arrays.fill(p, Double.NaN);
        for (BudgetController.WindowTail t : d.window()) {
            if (t.bin() < p.length) {
                p[t.bin()] = t.p5();
            }
        }
        return p;
    }

    private static String[] reasons(List<BudgetController.Change> changes) {
        return changes.stream().map(c -> "bin " + c.bin() + ": " + c.from() + " -> " + c.to() + " (" + c.reason() + ")").toArray(String[]::new);
    }

    private double predictedSpeedup() {
        int ctx = (s.train().contextMin() + s.train().contextMax()) / 2;
        return cost.predictedSpeedup(budgets.schedule(), ctx, 16);
    }

    /**
     * Applies a validated plan as a new settings version: controller keys retune the BudgetController
     * (a changed setting is a new schedule version), the rest goes to the guard and, when changed, to
     * the buffers and learners; the changed keys are noted as tuned. Returns the schedule after it.
     */
    private Schedule apply(LiveTuning.Plan p) {
        Schedule after = budgets.schedule();
        if (p.controller() != null) {
            after = budgets.retune(p.controller());
            tau = p.controller().tau();
        }
        guard.retune(budgets.settings(), p.compression());
        LiveSettings next = new LiveSettings(live.version() + 1, p.live().staleness(), p.live().lr(), p.live().distill());
        boolean runtimeChanged = next.staleness() != live.staleness() || next.lr() != live.lr() || next.distill() != live.distill();
        live = next;
        if (runtimeChanged) {
            for (ActorRef<LiveSettings> r : liveSubscribers) {
                r.tell(live);
            }
        }
        record(p);
        return after;
    }

    /** Notes an applied plan's changes: a key at its configured value is not tuned, any other is, from that value. */
    private void record(LiveTuning.Plan p) {
        p.changed().forEach((k, v) -> {
            if (LiveTuning.same(v, configured.get(k))) {
                tuned.remove(k);
                tunedFrom.remove(k);
            } else {
                tuned.put(k, v);
                tunedFrom.put(k, configured.get(k));
            }
        });
    }

    /** The prompt cursor, every group not yet delivered (open leases and the re-issue queue) and the live tuning. */
    private void persistState() {
        List<Long> open = new ArrayList<>(reissue);
        for (Lease l : leases.values()) {
            for (long g : l.groups()) {
                open.add(g);
            }
        }
        try {
            ControllerState.write(s, new ControllerState(nextGroup, open.stream().mapToLong(Long::longValue).toArray(),
                    live.version(), tuned, tunedFrom));
        } catch (java.io.IOException e) {
            getContext().getLog().warn("cannot persist the controller state: {}", e.getMessage());
        }
    }

    /** Where the controller keeps its current schedule, so a restarted singleton resumes it. */
    static java.nio.file.Path persistedSchedule(RunSettings s) {
        return s.train().out().resolve("controller").resolve("schedule.conf");
    }

    private void persist(Schedule sched) {
        java.nio.file.Path file = persistedSchedule(s);
        try {
            io.tailguard.model.io.AtomicFiles.writeString(file, sched.toHocon());
        } catch (java.io.IOException e) {
            getContext().getLog().warn("cannot persist the schedule to {}: {}", file, e.getMessage());
        }
    }

    private void exportSchedule(List<BudgetController.Change> changes) {
        Schedule sched = budgets.schedule();
        int[] b = sched.budgets();
        double[] p5 = budgets.p5PerBin();
        for (int i = 0; i < b.length; i++) {
            metrics.budget.labelValues(Integer.toString(i)).set(b[i]);
            if (!Double.isNaN(p5[i])) {
                metrics.alphaP5.labelValues(Integer.toString(i)).set(p5[i]);
                metrics.optionAlphaP5.labelValues("plain", Integer.toString(i)).set(p5[i]);
            }
        }
        metrics.scheduleVersion.set(sched.version());
        if (sched.version() != persistedVersion) {
            persist(sched);
            persistedVersion = sched.version();
        }
        metrics.tau.set(tau);
        metrics.predictedSpeedup.set(predictedSpeedup());
        metrics.settingsVersion.set(live.version());
    }

    /**
     * Validates the whole request first (all or nothing), then applies it: controller keys retune
     * the BudgetController (a changed setting is a new schedule version), buffer and learner keys go
     * to them as {@link LiveSettings}. Any change is a new settings version, logged old -> new.
     */
    private Behavior<Command> onTune(Tune t) {
        LiveTuning.Plan p;
        try {
            Map<String, String> kv = new LinkedHashMap<>();
            for (int i = 0; i < t.keys().length; i++) {
                kv.put(t.keys()[i], t.values()[i]);
            }
            p = LiveTuning.plan(budgets.settings(), live, guard.settings(), kv, s.train().contextMax());
        } catch (IllegalArgumentException e) {
            getContext().getLog().warn("tune refused: {}", e.getMessage());
            t.replyTo().tell(new TuneResult(false, e.getMessage(), budgets.schedule().version(), live.version()));
            return this;
        }
        if (t.fromFile()) {
            // the file now says these values: they are the configuration, no longer a tuning away from it
            Map<String, Object> now = LiveTuning.values(p.controller() != null ? p.controller() : budgets.settings(), p.live(),
                    p.compression());
            for (String k : t.keys()) {
                String key = LiveTuning.canonical(k);
                configured.put(key, String.valueOf(now.get(key)));
                tuned.remove(key);
                tunedFrom.remove(key);
            }
        }
        if (p.changes().isEmpty()) {
            persistState();
            t.replyTo().tell(new TuneResult(true, "no change (every value is the running one)", budgets.schedule().version(),
                    live.version()));
            return this;
        }
        Schedule before = budgets.schedule();
        Schedule after = apply(p);
        persistState();
        String msg = "applied " + String.join(", ", p.changes()) + "; settings v" + live.version()
                + (after.version() != before.version() ? "; schedule v" + after.version() : "");
        getContext().getLog().info("tune: {}", msg);
        exportSchedule(List.of());
        t.replyTo().tell(new TuneResult(true, msg, after.version(), live.version()));
        return this;
    }

    private void subscribe(ActorRef<LiveSettings> r) {
        if (liveSubscribers.add(r)) {
            getContext().watch(r);
        }
        r.tell(live);
    }

    private Behavior<Command> onStatus(GetStatus g) {
        Schedule sched = budgets.schedule();
        String[] members = java.util.stream.StreamSupport.stream(
                        org.apache.pekko.cluster.typed.Cluster.get(getContext().getSystem()).state().getMembers().spliterator(), false)
                .map(m -> m.address() + " " + m.status() + " " + m.getRoles()).toArray(String[]::new);
        g.replyTo().tell(new Status(sched.version(), sched.budgets(), budgets.p5PerBin(), tau,
                policy == null ? -1 : policy.version(), leases.size(), nextGroup, bufferGroups, rolloutRate,
                predictedSpeedup(), members, live.version(), live.staleness(), live.lr(), live.distill(), compressedOption(),
                tuned.keySet().toArray(String[]::new), tuned.values().toArray(String[]::new),
                tuned.keySet().stream().map(tunedFrom::get).toArray(String[]::new)));
        return this;
    }

    private CompressedOption compressedOption() {
        CompressedActorGuard.Settings g = guard.settings();
        long all = plainTokens + compressedTokens;
        return new CompressedOption(g.on(), guard.version(), compressed == null ? "" : compressed.describe(), guard.inUse(), g.probeShare(),
                g.maxLag(), compressedP5, all == 0 ? 0 : compressedTokens / (double) all, guard.reason());
    }

    private Behavior<Command> onListed(Listed c) {
        if (c.listing().isForKey(TrajectoryBuffer.KEY)) {
            for (ActorRef<TrajectoryBuffer.Command> b : c.listing().getServiceInstances(TrajectoryBuffer.KEY)) {
                subscribe(b.narrow());
            }
        } else if (c.listing().isForKey(Learner.KEY)) {
            for (ActorRef<Learner.Command> l : c.listing().getServiceInstances(Learner.KEY)) {
                subscribe(l.narrow());
            }
        } else {
            Set<ActorRef<RunObserver.Event>> set = c.listing().getServiceInstances(RunObserver.KEY);
            observers.clear();
            observers.addAll(set);
        }
        return this;
    }
}
