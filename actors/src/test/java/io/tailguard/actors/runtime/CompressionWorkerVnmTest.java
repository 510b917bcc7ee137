package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.Main;
import io.tailguard.compression.VnmCheckpoint;
import io.tailguard.compression.VnmChecker;
import io.tailguard.compression.VnmPattern;
import io.tailguard.model.Devices;
import io.tailguard.model.GradMode;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.ConfigJson;
import io.tailguard.rollout.sparse.TailStats;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The compression worker with tailguard.compression.method = vnm: it prunes a due version to the
 * configured V:N:M pattern (with a short LoRA recovery) into the store, announces it, and the
 * announcement is a compressed rollout option like YAQA's: the controller leases its probe share to
 * it, a rollout worker samples with the pruned weights, and the guard judges its tails.
 */
class CompressionWorkerVnmTest {
    static final Duration LONG = Duration.ofSeconds(120);

    @Test
    void prunesADueVersionAndItBecomesAGuardedRolloutOption(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Config c = ConfigFactory.parseString(String.join("\n",
                        "tailguard.train { checkpoint = \"" + init + "\", context-min = 64, context-max = 96, out = \"" + tmp.resolve("run") + "\" }",
                        "tailguard.rollout { prompts-per-lease = 1, group-size = 4 }",
                        "tailguard.controller { window = 300ms, min-tokens = 20, keep-windows = 2 }",
                        "tailguard.metrics.port = 0", "tailguard.admin.port = 0",
                        "tailguard.compression { every = 2, method = vnm, calibration = 4, held-out = 2,",
                        "  rollout = on, probe-share = 0.25, max-lag = 5,",
                        "  vnm { pattern = \"64:2:5\", permute-rounds = 3, recovery-steps = 2, recovery-batch = 1 } }",
                        "pekko.actor.provider = local", "pekko.remote.artery.enabled = off"))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "test");
        assertEquals("vnm_64_2_5", s.compression().label());
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<RunObserver.Event> observer = kit.createTestProbe();
            TestProbe<Receptionist.Registered> registered = kit.createTestProbe();
            kit.system().receptionist().tell(Receptionist.register(RunObserver.KEY, observer.ref(), registered.ref()));
            registered.expectMessageClass(Receptionist.Registered.class);
            TestProbe<Controller.Command> announced = kit.createTestProbe();
            ActorRef<CompressionWorker.Command> w = kit.spawn(CompressionWorker.create(s, announced.ref(), "cpu", metrics));
            Thread.sleep(500); // the worker's observer subscription
            PolicyPublished v2 = CheckpointStore.existing(init, 2);
            w.tell(CheckpointStore.existing(init, 1)); // not a multiple of `every`: skipped
            w.tell(v2);

            // 1. the pruned checkpoint in the store, its report and its announcement
            RunObserver.Compressed done = awaitCompressed(observer);
            assertEquals(2, done.version());
            assertEquals("vnm_64_2_5", done.method());
            assertEquals(32, done.bits(), "V:N:M keeps F32 values");
            assertTrue(done.kl() > 0 && Double.isFinite(done.kl()), "pruning half and more of every layer moves the model: KL " + done.kl());
            Path dir = Path.of(done.dir());
            assertEquals("v000002-vnm_64_2_5", dir.getFileName().toString());
            assertTrue(Files.isRegularFile(dir.resolve(VnmCheckpoint.VNM_JSON)));
            assertEquals(done.bytes(), Files.size(dir.resolve(VnmCheckpoint.SPARSE_TENSORS)));
            assertEquals(2, io.tailguard.model.io.Manifest.read(dir).version());
            CompressedPublished a = announced.expectMessageClass(CompressedPublished.class, Duration.ofSeconds(5));
            assertEquals(new CompressedPublished(2, dir.toAbsolutePath().normalize().toUri().toString(),
                    io.tailguard.model.io.Manifest.sha256(dir.resolve("manifest.json")), "vnm_64_2_5", 32, done.kl()), a);
            assertEquals("v2 vnm_64_2_5", a.describe());
            assertEquals(new CompressedPublished(2, a.uri(), a.sha256(), "vnm_64_2_5", 32, Double.NaN),
                    CheckpointStore.latestCompressed(tmp.resolve("run").resolve("store")), "a controller that starts over finds it");
            assertTrue(metrics.registry().scrape().stream().anyMatch(m -> m.getMetadata().getName().equals("tailguard_compression_kl")));

            // every pruned layer obeys 64:2:5 (checked on the weights read back)
            VnmPattern pattern = VnmPattern.parse("64:2:5");
            Map<String, long[]> shapes;
            try (GradMode.Scope noGrad = GradMode.off();
                 Qwen3Model pruned = VnmCheckpoint.read(dir).toModel(Devices.parse("cpu"))) {
                shapes = ParameterShapes.of(pruned.config());
                int checked = 0;
                for (Map.Entry<String, float[]> e : pruned.hostWeights().entrySet()) {
                    if (e.getKey().endsWith("_proj.weight")) {
                        float[] v = e.getValue();
                        boolean[] nz = new boolean[v.length];
                        for (int i = 0; i < v.length; i++) {
                            nz[i] = v[i] != 0f;
                        }
                        long[] shape = shapes.get(e.getKey());
                        assertEquals(Optional.empty(), VnmChecker.violation(nz, (int) shape[0], (int) shape[1], pattern), e.getKey());
                        checked++;
                    }
                }
                assertEquals(4 * 7, checked, "seven linear layers in each of tiny's four blocks");
            }

            // 2. the controller offers it: the probe share of the leases names it
            var controller = kit.spawn(Controller.create(s, ConfigJson.read(init.resolve("config.json")), init, metrics));
            controller.tell(v2);
            controller.tell(a);
            TestProbe<RolloutWorker.Command> leases = kit.createTestProbe();
            RolloutWorker.Work compressedWork = null;
            int compressed = 0;
            for (int i = 0; i < 8; i++) {
                controller.tell(new Controller.RequestWork("w", leases.ref()));
                RolloutWorker.Work work = leases.expectMessageClass(RolloutWorker.Work.class, Duration.ofSeconds(10));
                controller.tell(new Controller.LeaseDone(work.lease(), "w"));   // as the buffer acknowledges it
                if (work.compressed() != null) {
                    // the controller found it in the store at start (KL not on disk), then was told of it
                    assertEquals(a.uri(), work.compressed().uri());
                    assertEquals(a.sha256(), work.compressed().sha256());
                    assertEquals(2, work.compressed().version());
                    compressedWork = work;
                    compressed++;
                }
            }
            assertEquals(2, compressed, "probing: a quarter of the leases");
            assertNotNull(compressedWork);

            // 3. a rollout worker samples that lease with the pruned weights; the policy probes
            TestProbe<Controller.Command> workerSide = kit.createTestProbe();
            TestProbe<TrajectoryBuffer.Command> buffer = kit.createTestProbe();
            kit.system().receptionist().tell(Receptionist.register(TrajectoryBuffer.KEY, buffer.ref(), registered.ref()));
            registered.expectMessageClass(Receptionist.Registered.class);
            kit.spawn(RolloutWorker.create("w0", s, workerSide.ref(), "cpu", metrics));
            workerSide.expectMessageClass(Controller.RequestWork.class, LONG).replyTo().tell(compressedWork);
            TrajectoryBuffer.Trajectories t = await(buffer, TrajectoryBuffer.Trajectories.class); // the controller also tells buffers its settings
            Controller.TailReport report = workerSide.expectMessageClass(Controller.TailReport.class, LONG);
            assertEquals(2, report.compressedVersion());
            try (GradMode.Scope noGrad = GradMode.off();
                 Qwen3Model pruned = VnmCheckpoint.read(dir).toModel(Devices.parse("cpu"));
                 Qwen3Model policy = ModelLoader.load(init, Devices.parse("cpu"))) {
                CompressedRolloutTest.Differences vsPruned = CompressedRolloutTest.Differences.of(t, pruned);
                CompressedRolloutTest.Differences vsPolicy = CompressedRolloutTest.Differences.of(t, policy);
                assertTrue(vsPruned.tokens() > 0);
                assertTrue(vsPruned.max() < 1e-4, "behaviour log-probs vs the pruned model's: " + vsPruned);
                assertTrue(vsPolicy.max() > 0.05, "the behaviour log-probs must not be the policy's: " + vsPolicy);
            }

            // 4. its tails go to the guard, which judges them as the compressed option's
            controller.tell(report);
            TailStats tails = TailStats.fromBytes(report.tails());
            RunObserver.OptionWindow judged = awaitJudged(observer);
            assertEquals(2, judged.compressedVersion());
            boolean anyJudged = false;
            boolean allClear = true;
            for (int bin = 0; bin < tails.binCount(); bin++) {
                if (tails.count(bin) == 0) {
                    continue;
                }
                // the guard merges the lease's digest into its window's, which may interpolate between
                // centroids otherwise than the lease's own digest does: equal to well within 1e-6
                assertEquals(tails.p5(bin), judged.compressedP5()[bin], 1e-6, "the guard's p5 α of bin " + bin);
                if (tails.count(bin) >= s.controller().minTokens()) {
                    anyJudged = true;
                    allClear &= tails.p5(bin) >= s.controller().tau() + s.controller().hysteresis();
                }
            }
            // the guard's rule: in use once every judged bin's p5 α is at least τ + hysteresis
            assertEquals(anyJudged && allClear, judged.compressedInUse());
            assertTrue(anyJudged || !judged.compressedInUse());
        } finally {
            kit.shutdownTestKit();
        }
    }

    static <T, M extends T> M await(TestProbe<T> probe, Class<M> type) {
        long until = System.nanoTime() + LONG.toNanos();
        while (System.nanoTime() < until) {
            T m = probe.receiveMessage(LONG);
            if (type.isInstance(m)) {
                return type.cast(m);
            }
        }
        throw new AssertionError("no " + type.getSimpleName());
    }

    static RunObserver.Compressed awaitCompressed(TestProbe<RunObserver.Event> observer) {
        long until = System.nanoTime() + LONG.toNanos();
        while (System.nanoTime() < until) {
            if (observer.receiveMessage(LONG) instanceof RunObserver.Compressed done) {
                return done;
            }
        }
        throw new AssertionError("no compressed version");
    }

    /** The first window in which the compressed option has tokens. */
    static RunObserver.OptionWindow awaitJudged(TestProbe<RunObserver.Event> observer) {
        long until = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < until) {
            RunObserver.Event e = observer.receiveMessage(Duration.ofSeconds(20));
            if (e instanceof RunObserver.Window w && w.option().compressedTokens() > 0) {
                return w.option();
            }
        }
        throw new AssertionError("no window with the compressed option's tokens");
    }
}
