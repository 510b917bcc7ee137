package io.tailguard.actors.runtime;

import io.tailguard.model.GradMode;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.sparse.WeightFormat;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.worker.RolloutEngine;
import io.tailguard.rollout.worker.SpeedupCadence;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A rollout worker: pulls a lease from the controller, rolls it out with its copy of the policy
 * ({@link RolloutEngine}: sparse decode, rewards, dense scoring, α tails, shadow replay), sends the
 * groups to the trajectory buffer (which acknowledges the lease once they are durable) and the tails
 * to the controller, and asks again. It hot-swaps to
 * every published policy version (loaded from the checkpoint store, sha256 checked) between leases.
 * A version that carries a DistillSparse LoRA is rolled out with it: the sampler (the sparse actor)
 * decodes with the adapter, and so does the shadow replay (the same actor one rung lower); the dense
 * scoring without it.
 * A lease that names a compressed version (a compressed option of the controller's approximation
 * budget) samples with those weights instead, loaded from the store (packed where the format allows,
 * manifest sha256 checked) and kept until a newer one is named: the behaviour log-probs are the
 * compressed model's, the policy scores a sample densely (p for α), the shadow replay replays with
 * the compressed weights one rung lower, and the tails go back marked with the compressed version and format.
 * Every tailguard.rollout.speedup-every-th lease under a sparse schedule (a {@link SpeedupCadence})
 * is also decoded densely in lockstep, to measure the rollout speedup inside the run; every lease's
 * prefill and decode seconds, with that measurement, go to the controller (RolloutTimed), which
 * passes them on to the run observers.
 * Runs on the blocking dispatcher: a lease is seconds of tensor work.
 */
public final class RolloutWorker extends AbstractBehavior<RolloutWorker.Command> {
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "tailguard-rollout-worker");

    public sealed interface Command permits Work, NoWork, PolicyPublished, BuffersChanged, Ask {}

    /**
     * A lease: groups (and their prompts), the policy to roll out with, the schedule and shadow
     * schedule; compressed: the compressed version to sample with instead of the policy (the policy
     * still probes), or null; halfCache: the option's KV cache is float16 (tailguard.rollout.kv-cache
     * = choose; otherwise the worker's cache is the run's setting).
     */
    public record Work(long lease, long[] groups, Prompt[] prompts, PolicyPublished policy, ScheduleSpec schedule,
                       ScheduleSpec shadow, long seed, CompressedPublished compressed, boolean halfCache) implements Command, Wire {
        /** On the run's own cache. */
        public Work(long lease, long[] groups, Prompt[] prompts, PolicyPublished policy, ScheduleSpec schedule,
                    ScheduleSpec shadow, long seed, CompressedPublished compressed) {
            this(lease, groups, prompts, policy, schedule, shadow, seed, compressed, false);
        }
    }

    public record NoWork(long retryMillis) implements Command, Wire {}

    record BuffersChanged(Receptionist.Listing listing) implements Command {}

    enum Ask implements Command { INSTANCE }

    static final Duration ASK_TIMEOUT = Duration.ofSeconds(15);

    public static Behavior<Command> create(String name, RunSettings s, ActorRef<Controller.Command> controller,
                                           String device, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(t -> new RolloutWorker(ctx, t, name, s, controller, device, metrics)));
    }

    private final String name;
    private final RunSettings s;
    private final ActorRef<Controller.Command> controller;
    private final String device;
    private final NodeMetrics metrics;
    private final TimerScheduler<Command> timers;
    private final Prompts prompts;
    private ActorRef<TrajectoryBuffer.Command> buffer;
    private Qwen3Model model;
    private Tokenizer tok;
    private RolloutEngine engine;
    private io.tailguard.model.lora.LoraAdapter lora;
    private long loaded = -1;
    private Qwen3Model compressedModel;
    private long compressedLoaded = -1;
    private long compressedFailed = -1;
    private boolean asking;
    /** Which leases measure the rollout speedup; kept across policy versions. */
    private final SpeedupCadence cadence;

    private RolloutWorker(ActorContext<Command> ctx, TimerScheduler<Command> timers, String name, RunSettings s,
                          ActorRef<Controller.Command> controller, String device, NodeMetrics metrics) {
        super(ctx);
        this.timers = timers;
        this.name = name;
        this.s = s;
        this.controller = controller;
        this.device = device;
        this.metrics = metrics;
        this.cadence = new SpeedupCadence(s.rollout().speedupEvery());
        this.prompts = new Prompts(s.train().task(), s.train().seed(), s.train().contextMin(), s.train().contextMax());
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(TrajectoryBuffer.KEY,
                ctx.messageAdapter(Receptionist.Listing.class, BuffersChanged::new)));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(BuffersChanged.class, this::onBuffers)
                .onMessage(Work.class, w -> {
                    try (GradMode.Scope g = GradMode.off()) {
                        return onWork(w);
                    }
                })
                .onMessage(NoWork.class, n -> {
                    asking = false;
                    timers.startSingleTimer(Ask.INSTANCE, Duration.ofMillis(n.retryMillis()));
                    return this;
                })
                .onMessage(Ask.class, a -> {
                    ask();
                    return this;
                })
                .onMessage(PolicyPublished.class, p -> {
                    try (GradMode.Scope g = GradMode.off()) {
                        return onPolicy(p);
                    }
                })
                .onSignal(PostStop.class, x -> {
                    if (lora != null) {
                        lora.close();
                    }
                    if (model != null) {
                        model.close();
                    }
                    if (compressedModel != null) {
                        compressedModel.close();
                    }
                    return this;
                })
                .build();
    }

    private Behavior<Command> onBuffers(BuffersChanged c) {
        Set<ActorRef<TrajectoryBuffer.Command>> set = c.listing().getServiceInstances(TrajectoryBuffer.KEY);
        buffer = set.isEmpty() ? null : set.iterator().next();
        if (buffer != null && !asking) {
            ask();
        }
        return this;
    }

    /**
     * Asks the controller for a lease; asks again if nothing comes within the ask timeout (a
     * controller that died with the request, while its singleton moves to another node).
     */
    private void ask() {
        asking = true;
        controller.tell(new Controller.RequestWork(name, getContext().getSelf()));
        timers.startSingleTimer(Ask.INSTANCE, ASK_TIMEOUT);
    }

    private Behavior<Command> onPolicy(PolicyPublished p) {
        if (p.version() > loaded) {
            swapTo(p);
        }
        return this;
    }

    private void swapTo(PolicyPublished p) {
        Qwen3Model next = CheckpointStore.load(p, device);
        io.tailguard.model.lora.LoraAdapter nextLora = null;
        if (CheckpointStore.hasLora(p)) {
            nextLora = CheckpointStore.loadLora(p, next);
            next.attach(nextLora);
            nextLora.setEnabled(false); // on only, merged, while the sparse actor samples
        }
        if (tok == null) {
            tok = Tokenizers.fromCheckpoint(Path.of(java.net.URI.create(p.uri())));
        }
        if (lora != null) {
            lora.close();
        }
        if (model != null) {
            model.close();
        }
        model = next;
        lora = nextLora;
        loaded = p.version();
        engine = new RolloutEngine(model, tok, prompts.task(), new RolloutEngine.Options(s.rollout().groupSize(),
                s.rollout().temperature(), 64, s.controller().binWidth(), s.rollout().shadowFraction(), s.rollout().scoreFraction(),
                s.rollout().kvCache()), lora);
        metrics.policyVersionLoaded.labelValues(name).set(loaded);
        metrics.workerLora.labelValues(name).set(lora == null ? 0 : 1);
        metrics.workerCompressedVersion.labelValues(name).set(compressedLoaded);
        metrics.hotSwaps.labelValues(name).inc();
        getContext().getLog().info("{} now rolls out with policy v{}{}", name, loaded,
                lora == null ? "" : " and its DistillSparse LoRA (sparse actor only)");
    }

    private Behavior<Command> onWork(Work w) {
        asking = false;
        timers.cancel(Ask.INSTANCE);
        if (w.policy().version() > loaded) {
            swapTo(w.policy());
        }
        var schedule = w.schedule().toSchedule();
        var shadow = w.shadow() == null ? null : w.shadow().toSchedule();
        if (shadow != null && engine.options().binWidth() != shadow.binWidth()) {
            shadow = null;
        }
        Qwen3Model actor = w.compressed() == null ? null : compressedActor(w.compressed());
        // the option that rolls out: the weights that loaded, on the lease's cache
        WeightFormat format = actor == null ? WeightFormat.plain() : w.compressed().format();
        if (w.halfCache()) {
            format = format.withHalfCache();
        }
        String option = format.label();
        boolean measure = cadence.next(schedule, format.isPlain() ? SpeedupCadence.POLICY : option);
        RolloutEngine.Result r;
        try (io.tailguard.model.NativeLibraries.ThreadCap cap = io.tailguard.model.NativeLibraries.limitThreads(s.rollout().threads())) {
            r = (w.halfCache() ? engine.withKvCache(ai.djl.ndarray.types.DataType.FLOAT16) : engine).run(Arrays.asList(w.prompts()),
                    w.groups(), schedule, shadow, w.seed(), actor, measure);
        }
        int g = s.rollout().groupSize();
        TrajectoryBuffer.GroupResult[] groups = new TrajectoryBuffer.GroupResult[w.groups().length];
        List<RolloutEngine.Trajectory> ts = r.trajectories();
        for (int i = 0; i < groups.length; i++) {
            TrajectoryBuffer.Sample[] samples = new TrajectoryBuffer.Sample[g];
            for (int k = 0; k < g; k++) {
                RolloutEngine.Trajectory t = ts.get(i * g + k);
                samples[k] = new TrajectoryBuffer.Sample(t.promptIds(), t.outputIds(), t.behaviourLogprobs(), t.reward(),
                        t.reason());
            }
            groups[i] = new TrajectoryBuffer.GroupResult(w.groups()[i], w.prompts()[i].id(), name, samples);
        }
        if (buffer != null) {
            // the buffer acknowledges the lease to the controller once its groups are durable; without
            // a buffer the lease times out and is issued again
            var t = new TrajectoryBuffer.Trajectories(w.lease(), name, loaded, groups,
                    r.generatedTokens() / Math.max(1e-9, r.generateSeconds()), w.schedule());
            // a remote buffer's message crosses the wire, where one over its bound would be dropped
            // unseen: the controller hears of it instead (within one process nothing is serialized)
            String refusal = buffer.path().address().hasLocalScope() ? null : KryoSerializer.refusal(getContext().getSystem(), t);
            if (refusal == null) {
                buffer.tell(t);
            } else {
                controller.tell(new Controller.LeaseOversized(w.lease(), name, refusal));
            }
        }
        // the lease's own generation seconds: a lease that measured the speedup also decoded densely in
        // lockstep, and that reference is no part of its option's measured speed
        RolloutEngine.SpeedupSample paired = r.speedup();
        double seconds = paired == null ? r.generateSeconds()
                : Math.max(1e-9, r.generateSeconds() - paired.denseDecodeSeconds() - paired.densePrefillSeconds());
        controller.tell(new Controller.TailReport(name, w.schedule(), r.tails().toBytes(), shadow == null ? null : w.shadow(),
                r.shadow() == null ? null : r.shadow().toBytes(), r.generatedTokens(), seconds,
                actor == null ? -1 : compressedLoaded, format.isPlain() ? "" : option));
        controller.tell(new Controller.RolloutTimed(timed(w, r, option)));
        metrics.rolloutTokens.labelValues(schedule.isDense() ? "dense" : "sparse").inc(r.generatedTokens());
        metrics.trajectories.inc(ts.size());
        metrics.rolloutTokensPerSecond.labelValues(name).set(r.generatedTokens() / Math.max(1e-9, r.generateSeconds()));
        ask();
        return this;
    }

    /** The lease's rollout time for the run, with its speedup measurement when it made one. */
    private RunObserver.Rollout timed(Work w, RolloutEngine.Result r, String option) {
        RolloutEngine.SpeedupSample m = r.speedup();
        double nan = Double.NaN;
        return new RunObserver.Rollout(System.currentTimeMillis(), name, w.lease(), w.schedule().version(),
                r.trajectories().size(), r.decodeSteps(), r.prefillSeconds(), r.decodeSeconds(), m != null,
                m != null ? m.liveDecodeSeconds() : nan, m != null ? m.denseDecodeSeconds() : nan,
                m != null ? m.densePrefillSeconds() : nan, m != null ? m.predictedLiveSeconds() : nan,
                m != null ? m.predictedDenseSeconds() : nan, option, r.generateSeconds(), r.scoreSeconds(), r.shadowSeconds());
    }

    /**
     * The compressed weights a lease names, loaded once per version (a newer one replaces the old).
     * One that does not load (a bad sha256, a missing file, another model's shape) is logged once
     * and its leases roll out with the policy, reported as such.
     */
    private Qwen3Model compressedActor(CompressedPublished c) {
        if (c.version() == compressedLoaded) {
            return compressedModel;
        }
        if (c.version() == compressedFailed) {
            return null;
        }
        Qwen3Model next;
        try {
            next = CheckpointStore.loadCompressed(c, device, s.rollout().packedActivations());
        } catch (RuntimeException e) {
            compressedFailed = c.version();
            getContext().getLog().warn("{}: compressed {} does not load ({}); its leases roll out with the policy", name,
                    c.describe(), e.getMessage());
            return null;
        }
        if (!next.config().equals(model.config())) {
            next.close();
            compressedFailed = c.version();
            getContext().getLog().warn("{}: compressed {} is not of the policy's shape; its leases roll out with the policy",
                    name, c.describe());
            return null;
        }
        if (compressedModel != null) {
            compressedModel.close();
        }
        compressedModel = next;
        compressedLoaded = c.version();
        metrics.workerCompressedVersion.labelValues(name).set(compressedLoaded);
        getContext().getLog().info("{} now samples compressed leases with {} ({})", name, c.describe(), next.isPacked()
                ? "packed, " + next.linearBytes() + " bytes of decoder linears" : "dequantized to float32");
        return compressedModel;
    }
}
