package io.tailguard.actors.runtime;

import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedCheckpoint;
import io.tailguard.compression.QuantizedModel;
import io.tailguard.compression.YaqaQuantizer;
import io.tailguard.model.Devices;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.recipes.CompressionData;
import io.tailguard.recipes.VnmCompression;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The compression worker (role `compression`, on the blocking dispatcher): every
 * {@code tailguard.compression.every}-th published policy version is quantized with YAQA (or a
 * baseline) into a packed checkpoint in the store ({@code <out>/store/compressed/v000010-yaqa_b4/}),
 * or pruned to a V:N:M pattern (with its LoRA recovery, as `compress vnm` does) into a packed sparse
 * one ({@code v000010-vnm_64_2_5/}),
 * its KL to the policy per token is measured on held-out task prompts, and the outcome goes to the
 * metrics and to the run's observers. The artifact is announced to the controller
 * ({@link CompressedPublished}: version, uri, sha256, method, bits), which may lease rollouts to it
 * (the compressed rollout option); workers load it from the store. Of the due versions that arrive
 * while one is being compressed, only the newest is compressed next (the others are skipped).
 * A job that fails is logged and counted, and after tailguard.compression.max-failures in a row the
 * run stops ({@link FailureStreak}): compression that keeps failing is not run past silently.
 */
public final class CompressionWorker extends AbstractBehavior<CompressionWorker.Command> {
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "tailguard-compression-worker");

    public sealed interface Command permits PolicyPublished, Listed, Drain {}

    record Listed(Receptionist.Listing listing) implements Command {}

    /** Compress the newest pending version (sent to itself, so it queues behind the versions already waiting). */
    enum Drain implements Command { INSTANCE }

    public static Behavior<Command> create(RunSettings s, ActorRef<Controller.Command> controller, String device, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> new CompressionWorker(ctx, s, controller, device, metrics));
    }

    private final RunSettings s;
    private final ActorRef<Controller.Command> controller;
    private final String device;
    private final NodeMetrics metrics;
    private final Prompts prompts;
    private final Set<ActorRef<RunObserver.Event>> observers = new java.util.HashSet<>();
    private final FailureStreak failures;
    private long lastDone = -1;
    private PolicyPublished pending;

    private CompressionWorker(ActorContext<Command> ctx, RunSettings s, ActorRef<Controller.Command> controller, String device,
                              NodeMetrics metrics) {
        super(ctx);
        this.s = s;
        this.controller = controller;
        this.device = device;
        this.metrics = metrics;
        this.failures = new FailureStreak("tailguard.compression.max-failures", s.bounds().maxCompressionFailures(), ctx.getLog(),
                metrics.compressionFailures::inc, RunStop.of(ctx.getSystem())::stop);
        this.prompts = new Prompts(s.train().task(), PromptStreams.runCompression(s.train().seed()), s.train().contextMin(),
                s.train().contextMax());
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(RunObserver.KEY,
                ctx.messageAdapter(Receptionist.Listing.class, Listed::new)));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(PolicyPublished.class, this::onPolicy)
                .onMessage(Drain.class, d -> {
                    PolicyPublished p = pending;
                    pending = null;
                    if (p != null && p.version() > lastDone) {
                        // every core the process may use, whatever this pool thread's libtorch took over at its start
                        try (io.tailguard.model.GradMode.Scope g = io.tailguard.model.GradMode.off();
                             io.tailguard.model.NativeLibraries.ThreadCap all = io.tailguard.model.NativeLibraries.limitThreads(0)) {
                            compress(p);
                            failures.succeeded();
                        } catch (RuntimeException | java.io.IOException e) {
                            failures.failed("compressing policy v" + p.version() + " failed: " + e);
                        }
                        controller.tell(new Controller.CompressionJobs(ControllerStatus.of(failures.view())));
                    }
                    return this;
                })
                .onMessage(Listed.class, l -> {
                    observers.clear();
                    observers.addAll(l.listing().getServiceInstances(RunObserver.KEY));
                    return this;
                })
                .build();
    }

    /**
     * A version due for compression becomes the pending one (a newer due one replaces it), and the
     * worker drains it after the messages already queued: versions published while it compressed
     * the last one wait in its mailbox, so only the newest due one among them is compressed.
     */
    private Behavior<Command> onPolicy(PolicyPublished p) {
        if (s.compression().every() == 0 || p.version() == 0 || p.version() % s.compression().every() != 0 || p.version() <= lastDone) {
            return this;
        }
        if (pending == null) {
            getContext().getSelf().tell(Drain.INSTANCE);
        }
        if (pending == null || p.version() > pending.version()) {
            pending = p;
        }
        return this;
    }

    private void compress(PolicyPublished p) throws java.io.IOException {
        RunSettings.Compression c = s.compression();
        lastDone = p.version();
        String m = c.label();
        Path out = CheckpointStore.compressedRoot(s.train().out().resolve("store"))
                .resolve(CheckpointStore.compressedName(p.version(), m, c.valueBits()));
        Path dir = Path.of(java.net.URI.create(p.uri()));
        Tokenizer tok = Tokenizers.fromCheckpoint(dir);
        Task task = prompts.task();
        List<int[]> calib = CompressionData.solved(tok, task, prompts::of, 0, c.calibration());
        List<int[]> held = CompressionData.solved(tok, task, prompts::of, PromptStreams.RUN_COMPRESSION_HELD_OUT_FROM, c.heldOut());
        try (Qwen3Model model = CheckpointStore.load(p, device)) {
            Outcome o = c.vnm() != null ? prune(c, p, model, dir, tok, task, calib, held, out) : quantize(c, p, model, dir, calib, held, out);
            double kl = o.kl();
            long bytes = o.bytes();
            double seconds = o.seconds();
            metrics.compressionKl.labelValues(m, Integer.toString(c.valueBits())).set(kl);
            metrics.compressionBytes.labelValues(m, Integer.toString(c.valueBits())).set(bytes);
            metrics.compressionSeconds.labelValues(m, Integer.toString(c.valueBits())).set(seconds);
            metrics.compressedVersion.set(p.version());
            getContext().getLog().info("compressed policy v{} with {} at {} bits: KL {} per token, {} bytes, {} s -> {}",
                    p.version(), m, c.valueBits(), String.format("%.5f", kl), bytes, String.format("%.1f", seconds), out);
            controller.tell(CheckpointStore.compressed(out, p.version(), m, c.valueBits(), kl));
            RunObserver.Compressed e = new RunObserver.Compressed(p.version(), m, c.valueBits(), kl, bytes, seconds, out.toString());
            for (ActorRef<RunObserver.Event> o2 : observers) {
                o2.tell(e);
            }
        }
    }

    /** What compressing one version gave: its KL per token to the policy on held-out prompts, the compressed tensors' bytes, seconds. */
    private record Outcome(double kl, long bytes, double seconds) {}

    /** YAQA (or a baseline) at c.bits() bits, written to {@code out}, read back and measured. */
    private Outcome quantize(RunSettings.Compression c, PolicyPublished p, Qwen3Model model, Path dir, List<int[]> calib,
                             List<int[]> held, Path out) throws java.io.IOException {
        long t0 = System.nanoTime();
        QuantizedModel q = YaqaQuantizer.quantize(model, calib, c.bits(), c.method(), s.train().seed());
        double seconds = (System.nanoTime() - t0) / 1e9;
        QuantizedCheckpoint.write(out, q, p.version(), dir.toString());
        double kl;
        try (Qwen3Model back = QuantizedCheckpoint.read(out).toModel(Devices.parse(device))) {
            kl = io.tailguard.compression.ModelKl.perToken(model, back, held);
        }
        return new Outcome(kl, Files.size(out.resolve(QuantizedCheckpoint.QUANT_TENSORS)), seconds);
    }

    /**
     * V:N:M pruning (with its recovery, if any) as `compress vnm` does it ({@link VnmCompression}),
     * on the run's calibration and held-out prompts, written to {@code out}, read back and measured.
     */
    private Outcome prune(RunSettings.Compression c, PolicyPublished p, Qwen3Model model, Path dir, Tokenizer tok, Task task,
                          List<int[]> calib, List<int[]> held, Path out) throws java.io.IOException {
        long seed = s.train().seed();
        // no pass@1 (evalN 0): the KL is what the worker reports
        CompressionData data = new CompressionData(task, c.calibration(), c.heldOut(), 0, seed);
        VnmCompression.Result r = VnmCompression.run(model, dir, data, tok, calib, held, c.vnm().options(seed, model), out, null,
                Devices.parse(device), (step, steps, stage, loss) -> { }, p.version());
        return new Outcome(r.quality().kl(), r.bytes(), r.seconds());
    }

    /** tailguard.compression.method's value for V:N:M pruning (then tailguard.compression.vnm says how). */
    static final String VNM = "vnm";

    static Method parseMethod(String m) {
        return switch (m) {
            case "yaqa-b" -> Method.YAQA_B;
            case "yaqa-a" -> Method.YAQA_A;
            case "ldlq" -> Method.LDLQ;
            case "rtn" -> Method.RTN;
            default -> throw new IllegalArgumentException("tailguard.compression.method: must be yaqa-b, yaqa-a, ldlq, rtn or vnm, got \""
                    + m + "\"");
        };
    }
}
