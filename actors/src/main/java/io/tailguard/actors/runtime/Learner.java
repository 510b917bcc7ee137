package io.tailguard.actors.runtime;

import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.GrpoObjective;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Devices;
import io.tailguard.model.GradMode;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.NativeLibraries;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.Manifest;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.lora.LoraFiles;
import io.tailguard.recipes.TrainingSession;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.eval.Evaluator;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.io.IOException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The learner: owns the policy being trained and its {@link TrainingSession} (the same one the
 * synchronous loop uses; through it the JVM's one GradientCollector); runs on the blocking dispatcher. It pulls batches of complete groups from
 * the trajectory buffer, takes one GRPO + TIS step per batch, publishes the policy to the checkpoint
 * store every publish-every steps (PolicyPublished to the controller and every worker), and writes
 * the resumable learner checkpoint (weights, optimizer moments, step) every checkpoint-every steps.
 * A learner started over an existing learner checkpoint resumes from it with its step counter.
 * It keeps the {@link GroupLedger} of the groups it trained and the groups the staleness bound dropped,
 * saved with every checkpoint in the same atomic step; it tells the buffer where it starts from
 * (TrajectoryBuffer.Resume: the journaled groups in neither set are trained), which groups each step
 * trained, and which groups each checkpoint holds (the buffer then trims them from the journal). A
 * group already in the ledger is never trained again.
 * It evaluates held-out greedy pass@1 at step 0, every tailguard.train.eval-every steps and at the
 * end (RunObserver.Evaluated), blocking for each evaluation; with tailguard.train.eval-holds-rollouts
 * on it holds the controller's leasing meanwhile (Controller.HoldLeases), else the workers go on.
 * With DistillSparse on (tailguard.learner.distill, live), it keeps a LoRA for the sparse actor
 * (rank 8, alpha 16, all seven linear modules: train-sync --distill's defaults; the loss from
 * tailguard.learner.distill-kl, -ppo and -divergence), trains it after
 * each policy step on the same samples under the schedule they were rolled out with, and publishes
 * it with every policy version; switched off, the adapter is dropped and no longer published.
 */
public final class Learner extends AbstractBehavior<Learner.Command> {

    public static final org.apache.pekko.actor.typed.receptionist.ServiceKey<Command> KEY =
            org.apache.pekko.actor.typed.receptionist.ServiceKey.create(Command.class, "tailguard-learner");

    public sealed interface Command permits GotBatch, Begin, Listed, LiveSettings, BufferStarted {}

    /** A buffer started on its own (a restart after a failure) asks where the learner stands. */
    record BufferStarted(ActorRef<TrajectoryBuffer.Command> buffer) implements Command {}

    record GotBatch(TrajectoryBuffer.Batch batch) implements Command {}

    enum Begin implements Command { INSTANCE }

    /** A receptionist listing: workers or observers (one adapter per message class, so one record). */
    record Listed(Receptionist.Listing listing) implements Command {}

    public static Behavior<Command> create(RunSettings s, Path start, ActorRef<Controller.Command> controller,
                                           ActorRef<TrajectoryBuffer.Command> buffer, String device, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> new Learner(ctx, s, start, controller, buffer, device, metrics));
    }

    private final RunSettings s;
    private final Path start;
    private final ActorRef<Controller.Command> controller;
    private final ActorRef<TrajectoryBuffer.Command> buffer;
    private final NodeMetrics metrics;
    private final CheckpointStore store;
    private final Path learnerDir;
    private final String tokenizerJson;
    private final Qwen3Model model;
    private final TrainingSession session;
    private final Set<ActorRef<RolloutWorker.Command>> workers = new HashSet<>();
    private final Set<ActorRef<CompressionWorker.Command>> compressors = new HashSet<>();
    private final Set<ActorRef<RunObserver.Event>> observers = new HashSet<>();
    private final List<RunObserver.Event> pending = new ArrayList<>();
    private final long startNanos = System.nanoTime();
    private PolicyPublished published;
    private boolean finished;
    /** The groups these weights consumed; saved with every checkpoint. */
    private final GroupLedger ledger;
    /** Groups trained or dropped since the last checkpoint (the buffer trims them once one holds them). */
    private final List<Long> sinceCheckpoint = new ArrayList<>();
    private boolean awaitingBatch;
    static final double DISTILL_LR = 1e-3;

    private Learner(ActorContext<Command> ctx, RunSettings s, Path start, ActorRef<Controller.Command> controller,
                    ActorRef<TrajectoryBuffer.Command> buffer, String device, NodeMetrics metrics) throws IOException {
        super(ctx);
        this.s = s;
        this.start = start;
        this.controller = controller;
        this.buffer = buffer;
        this.metrics = metrics;
        this.store = new CheckpointStore(s.train().out().resolve("store"));
        this.learnerDir = s.train().out().resolve("learner");
        // Only the learner writes here: a checkpoint a crash left moved aside goes back before we look for it.
        io.tailguard.model.io.CheckpointDir.recoverLeftovers(learnerDir);
        boolean resume = Files.isRegularFile(learnerDir.resolve(Manifest.FILE_NAME));
        Path from = resume ? learnerDir : start;
        this.tokenizerJson = Files.readString(from.resolve("tokenizer.json"));
        this.model = ModelLoader.load(from, Devices.parse(device));
        this.session = new TrainingSession(model, new TrainingSession.Options(s.rollout().groupSize(), s.learner().microBatch(),
                s.learner().lr(), s.learner().warmupSteps(), s.train().steps()));
        if (resume) {
            LearnerCheckpoint.TrainerState st = session.restore(learnerDir);
            ctx.getLog().info("learner resumes from {} at step {}", learnerDir, st.step());
        }
        this.ledger = resume ? GroupLedger.read(learnerDir) : new GroupLedger();
        buffer.tell(new TrajectoryBuffer.Resume(ledger.copy(), false)); // before the first NextBatch
        if (s.learner().distill()) {
            startDistill(resume ? learnerDir : null);
        }
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Listed::new);
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(RolloutWorker.KEY, listings));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(RunObserver.KEY, listings));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(CompressionWorker.KEY, listings));
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        controller.tell(new Controller.WantSettings(ctx.getSelf().narrow())); // the live settings, if tuned before a restart
        metrics.learnerLrPeak.set(session.peakLr());
        ctx.getSelf().tell(Begin.INSTANCE);
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Begin.class, b -> {
                    try (GradMode.Scope g = GradMode.off()) {
                        return onBegin();
                    }
                })
                .onMessage(GotBatch.class, b -> {
                    try (GradMode.Scope g = GradMode.off()) {
                        return onBatch(b);
                    }
                })
                .onMessage(LiveSettings.class, l -> {
                    try (GradMode.Scope g = GradMode.off()) {
                        return onSettings(l);
                    }
                })
                .onMessage(BufferStarted.class, b -> {
                    b.buffer().tell(new TrajectoryBuffer.Resume(ledger.copy(), true));
                    if (awaitingBatch) {
                        requestBatch(); // the restarted buffer lost the request
                    }
                    return this;
                })
                .onMessage(Listed.class, l -> l.listing().isForKey(RolloutWorker.KEY) ? onWorkers(l)
                        : l.listing().isForKey(CompressionWorker.KEY) ? onCompressors(l) : onObservers(l))
                .onSignal(PostStop.class, x -> {
                    stopDistill();
                    session.close();
                    model.close();
                    return this;
                })
                .build();
    }

    /**
     * DistillSparse on: a LoRA (from {@code from}'s adapter when it has one, a resumed
     * learner's; else fresh, seeded by the run's seed), attached switched off, and its trainer.
     */
    private void startDistill(Path from) {
        boolean saved = from != null && LoraFiles.inCheckpoint(from);
        LoraAdapter lora = saved ? LoraAdapter.load(from, model) : LoraAdapter.create(model, LoraConfig.defaults(), s.train().seed());
        session.startDistill(lora, new TrainingSession.Distill(DISTILL_LR, s.learner().distillKl(), s.learner().distillPpo(),
                s.learner().distillDivergence()));
        if (saved && Files.isRegularFile(from.resolve(LearnerCheckpoint.LORA_OPTIMIZER))) {
            // a resumed learner: the adapter's moments and step count too, so its updates continue exactly
            session.restoreDistill(from);
        }
        metrics.learnerDistill.set(1);
        getContext().getLog().info("learner: DistillSparse on from step {} ({} LoRA)", session.steps() + 1, saved ? "resumed" : "fresh");
    }

    private void stopDistill() {
        session.stopDistill();
        metrics.learnerDistill.set(0);
    }

    /** A new peak learning rate applies from the next step on, with the same warm-up shape; distill switches DistillSparse. */
    private Behavior<Command> onSettings(LiveSettings l) {
        if (l.distill() && !session.distilling()) {
            startDistill(null);
        } else if (!l.distill() && session.distilling()) {
            stopDistill();
            getContext().getLog().info("learner: DistillSparse off from step {} (settings v{}): versions carry no LoRA",
                    session.steps() + 1, l.version());
        }
        double peak = session.peakLr();
        if (l.lr() != peak) {
            session.setPeakLr(l.lr());
            metrics.learnerLrPeak.set(l.lr());
            getContext().getLog().info("learner: peak learning rate {} -> {} from step {} (settings v{})", peak, l.lr(),
                    session.steps() + 1, l.version());
        }
        return this;
    }

    private Behavior<Command> onBegin() {
        int step = session.steps();
        if (step == 0) {
            evaluate(0);
            published = CheckpointStore.existing(start, 0);
        } else {
            published = Files.isRegularFile(store.dirOf(step).resolve(Manifest.FILE_NAME))
                    ? CheckpointStore.existing(store.dirOf(step), step)
                    : store.publish(model, tokenizerJson, step, step, null, 0, session.lora());
        }
        announce(published);
        if (step >= s.train().steps()) {
            return finish("all steps were done before the start");
        }
        requestBatch();
        return this;
    }

    private void requestBatch() {
        awaitingBatch = true;
        buffer.tell(new TrajectoryBuffer.NextBatch(s.learner().groupsPerStep(), published.version(),
                getContext().messageAdapter(TrajectoryBuffer.Batch.class, GotBatch::new)));
    }

    private Behavior<Command> onBatch(GotBatch got) {
        if (finished) {
            return this;
        }
        awaitingBatch = false;
        TrajectoryBuffer.Batch b = got.batch();
        for (int i = 0; i < b.staleIds().length; i++) {
            if (ledger.dropStale(b.staleIds()[i], b.staleBins()[i])) {
                sinceCheckpoint.add(b.staleIds()[i]);
            }
        }
        List<GrpoLearner.Sample> samples = new ArrayList<>();
        List<Long> trainedIds = new ArrayList<>();
        long tokens = 0;
        double rewardSum = 0;
        int passed = 0;
        int maxStale = 0;
        for (int i = 0; i < b.groups().length; i++) {
            long id = b.groups()[i].groupId();
            if (ledger.consumed(id) || trainedIds.contains(id)) {
                getContext().getLog().error("learner: group {} was trained or dropped already; not trained again", id);
                metrics.groupsDropped.labelValues("duplicate").inc();
                continue;
            }
            trainedIds.add(id);
            maxStale = (int) Math.max(maxStale, published.version() - b.policyVersions()[i]);
            metrics.trainedGroups.labelValues(b.groups()[i].worker()).inc();
            for (TrajectoryBuffer.Sample x : b.groups()[i].samples()) {
                samples.add(new GrpoLearner.Sample(x.prompt(), x.output(), x.behaviourLogprobs(), x.reward()));
                tokens += x.output().length;
                rewardSum += x.reward();
                passed += x.reward() >= 1.0 ? 1 : 0;
            }
        }
        if (samples.isEmpty()) {
            requestBatch();
            return this;
        }
        long t0 = System.nanoTime();
        GrpoLearner.Report r;
        try (NativeLibraries.ThreadCap cap = NativeLibraries.limitThreads(s.learner().threads())) {
            r = session.policyStep(samples);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        for (long id : trainedIds) {
            ledger.train(id);
            sinceCheckpoint.add(id);
        }
        buffer.tell(new TrajectoryBuffer.Trained(trainedIds.stream().mapToLong(Long::longValue).toArray()));
        if (session.distilling()) {
            distill(b, samples);
        }
        int step = session.steps();
        GrpoObjective.Stats o = r.objective();
        metrics.learnerSteps.inc();
        metrics.learnerLr.set(r.lr());
        metrics.learnerTokensPerSecond.set(tokens / Math.max(1e-9, seconds));
        metrics.reward.set(rewardSum / samples.size());
        metrics.passRate.set(passed / (double) samples.size());
        metrics.staleness.set(maxStale);
        metrics.groupsDropped.labelValues("degenerate").inc(r.groupsDropped());
        if (o != null) {
            metrics.loss.set(o.loss());
            metrics.clipFraction.set(o.clipFraction());
            metrics.tisTruncated.set(o.tisTruncatedFraction());
            metrics.kl.labelValues("k1").set(o.klK1());
            metrics.kl.labelValues("k3").set(o.klK3());
        }
        emit(new RunObserver.Step(step, published.version(), rewardSum / samples.size(), passed / (double) samples.size(),
                r.groupsKept(), r.groupsDropped(), b.droppedStale(), maxStale, o == null ? Double.NaN : o.loss(),
                o == null ? Double.NaN : o.clipFraction(), o == null ? Double.NaN : o.tisTruncatedFraction(),
                o == null ? Double.NaN : o.klK3(), seconds, tokens, b.rolloutTokensPerSecond(), System.currentTimeMillis(), r.lr()));
        boolean last = step >= s.train().steps();
        boolean outOfTime = !s.train().maxTime().isZero() && System.nanoTime() - startNanos > s.train().maxTime().toNanos();
        if (step % s.learner().checkpointEvery() == 0 || last || outOfTime) {
            session.save(learnerDir, new LearnerCheckpoint.TrainerState(step, session.optimizerSteps(), 0, s.train().seed(),
                    session.lora() == null ? "grpo-async" : "grpo-async+distill-sparse"), tokenizerJson, step, start.toString(),
                    java.util.Map.of(GroupLedger.FILE, ledger.toBytes()));
            buffer.tell(new TrajectoryBuffer.Checkpointed(sinceCheckpoint.stream().mapToLong(Long::longValue).toArray()));
            sinceCheckpoint.clear();
        }
        if (step % s.learner().publishEvery() == 0 || last) {
            published = store.publish(model, tokenizerJson, step, step, published.uri(), 0, session.lora());
            metrics.policyVersion.set(step);
            announce(published);
        }
        if (last || outOfTime) {
            return finish(last ? "all steps done" : "time limit");
        }
        if (evaluatesAt(step, s.train().evalEvery())) {
            evaluate(step);
        }
        requestBatch();
        return this;
    }

    /**
     * Whether a step that does not end the run gets a held-out evaluation of its own: every
     * evalEvery-th (0: none; the start and the end are evaluated anyway, the end once).
     */
    static boolean evaluatesAt(int step, int evalEvery) {
        return evalEvery > 0 && step > 0 && step % evalEvery == 0;
    }

    /**
     * One DistillSparse update of the LoRA on the step's samples, masked as the newest schedule in
     * the batch decoded (a batch rolled out densely has nothing to distil: skipped).
     */
    private void distill(TrajectoryBuffer.Batch b, List<GrpoLearner.Sample> samples) {
        ScheduleSpec newest = null;
        for (ScheduleSpec x : b.schedules()) {
            if (x != null && (newest == null || x.version() > newest.version())) {
                newest = x;
            }
        }
        Schedule sched = newest == null ? Schedule.dense() : newest.toSchedule();
        if (sched.isDense()) {
            return;
        }
        long t0 = System.nanoTime();
        DistillSparse.Report d;
        try (NativeLibraries.ThreadCap cap = NativeLibraries.limitThreads(s.learner().threads())) {
            d = session.distillStep(samples, sched);
        }
        metrics.distillLoss.set(d.loss());
        metrics.distillKl.set(d.klK3());
        metrics.distillKlFull.set(d.klFull());
        metrics.distillSteps.inc();
        getContext().getLog().debug("distill step {}: loss {} k3 {} in {} s", d.step(), d.loss(), d.klK3(), (System.nanoTime() - t0) / 1e9);
    }

    private Behavior<Command> finish(String reason) {
        finished = true;
        evaluate(session.steps());
        emit(new RunObserver.Finished(session.steps(), reason));
        return this;
    }

    private void evaluate(int step) {
        // a dataset task without a held-out file is not evaluated: never on its training records
        if (s.train().evalN() == 0 || s.train().heldOutTask() == null) {
            return;
        }
        if (s.train().evalHoldsRollouts()) {
            controller.tell(new Controller.HoldLeases(true));
        }
        long began = System.currentTimeMillis();
        long t0 = System.nanoTime();
        var task = s.train().heldOutTask().at(s.train().contextMax());
        double p;
        // every core the process may use (the evaluation is not the learner step's split)
        try (NativeLibraries.ThreadCap all = NativeLibraries.limitThreads(0)) {
            p = Evaluator.evaluate(model, io.tailguard.model.tokenizer.Tokenizers.fromCheckpoint(start), task,
                    Evaluator.EvalOptions.heldOut(s.train().evalN(), s.train().evalSeed()), AttentionKernel.DENSE).passAt1();
        } finally {
            if (s.train().evalHoldsRollouts()) {
                controller.tell(new Controller.HoldLeases(false));
            }
        }
        metrics.passAt1.set(p);
        emit(new RunObserver.Evaluated(step, p, began, (System.nanoTime() - t0) / 1e9));
    }

    private void announce(PolicyPublished p) {
        controller.tell(p);
        for (ActorRef<RolloutWorker.Command> w : workers) {
            w.tell(p);
        }
        for (ActorRef<CompressionWorker.Command> c : compressors) {
            c.tell(p);
        }
    }

    private void emit(RunObserver.Event e) {
        if (observers.isEmpty()) {
            pending.add(e); // the observer may register after the first events
            return;
        }
        for (ActorRef<RunObserver.Event> o : observers) {
            o.tell(e);
        }
    }

    private Behavior<Command> onWorkers(Listed c) {
        Set<ActorRef<RolloutWorker.Command>> now = c.listing().getServiceInstances(RolloutWorker.KEY);
        for (ActorRef<RolloutWorker.Command> w : now) {
            if (!workers.contains(w) && published != null) {
                w.tell(published); // a late joiner starts from the current version
            }
        }
        workers.clear();
        workers.addAll(now);
        return this;
    }

    private Behavior<Command> onCompressors(Listed c) {
        compressors.clear();
        compressors.addAll(c.listing().getServiceInstances(CompressionWorker.KEY));
        return this;
    }

    private Behavior<Command> onObservers(Listed c) {
        observers.clear();
        observers.addAll(c.listing().getServiceInstances(RunObserver.KEY));
        if (!observers.isEmpty() && !pending.isEmpty()) {
            List<RunObserver.Event> flush = new ArrayList<>(pending);
            pending.clear();
            flush.forEach(this::emit);
        }
        return this;
    }

}
