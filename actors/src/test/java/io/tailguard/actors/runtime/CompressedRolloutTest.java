package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.Main;
import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedCheckpoint;
import io.tailguard.compression.QuantizedModel;
import io.tailguard.compression.YaqaQuantizer;
import io.tailguard.model.Devices;
import io.tailguard.model.GradMode;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scorer;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The compressed rollout option end to end in one process: a rollout worker given a lease that names
 * compressed weights samples with them (behaviour log-probs = the compressed model's, scored here
 * independently, teacher-forced), the policy probes (π_old = the policy's), and the tails it reports
 * are the compressed option's; the controller leases the probe share to a compressed version it was
 * told of and moves the bulk to it once its tail clears τ.
 */
class CompressedRolloutTest {
    static final Duration LONG = Duration.ofSeconds(120);

    /** A fresh `tiny` checkpoint under tmp. */
    static Path tinyInit(Path tmp) {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        return init;
    }

    /** The controller tests' run: short windows, compressed rollouts on with a quarter of the leases probing. */
    static Config controllerConfig(Path tmp, Path init) {
        return config(tmp, init, String.join("\n",
                "tailguard.controller { window = 300ms, min-tokens = 50, keep-windows = 2 }",
                "tailguard.compression { rollout = on, probe-share = 0.25, max-lag = 2 }"));
    }

    static Config config(Path tmp, Path init, String extra) {
        return ConfigFactory.parseString(String.join("\n",
                        "tailguard.train { checkpoint = \"" + init + "\", context-min = 64, context-max = 96, out = \"" + tmp.resolve("run") + "\" }",
                        "tailguard.rollout { prompts-per-lease = 1, group-size = 4 }",
                        "tailguard.metrics.port = 0", "tailguard.admin.port = 0",
                        extra,
                        "pekko.actor.provider = local", "pekko.remote.artery.enabled = off"))
                .withFallback(ConfigFactory.load()).resolve();
    }

    @Test
    void aCompressedLeaseSamplesWithTheCompressedWeightsAndThePolicyProbes(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Path rtn = tmp.resolve("rtn2");
        Config c = config(tmp, init, "");
        RunSettings s = RunSettings.parse(c, "test");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics();
             GradMode.Scope noGrad = GradMode.off();
             Qwen3Model policy = ModelLoader.load(init, Devices.parse("cpu"))) {
            // 2-bit RTN: far enough from the policy that its log-probs cannot pass for the policy's
            QuantizedModel q = YaqaQuantizer.quantize(policy, List.of(), 2, Method.RTN, 7);
            QuantizedCheckpoint.write(rtn, q, 0, init.toString());
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            TestProbe<TrajectoryBuffer.Command> buffer = kit.createTestProbe();
            TestProbe<Receptionist.Registered> registered = kit.createTestProbe();
            kit.system().receptionist().tell(Receptionist.register(TrajectoryBuffer.KEY, buffer.ref(), registered.ref()));
            registered.expectMessageClass(Receptionist.Registered.class);
            kit.spawn(RolloutWorker.create("w0", s, controller.ref(), "cpu", metrics));
            Prompts prompts = new Prompts(s.train().task(), s.train().seed(), s.train().contextMin(), s.train().contextMax());
            PolicyPublished v0 = CheckpointStore.existing(init, 0);
            ScheduleSpec dense = ScheduleSpec.of(Schedule.dense());

            // 1. a "compressed" actor identical to the policy (the policy's own checkpoint): α = 1
            CompressedPublished same = CheckpointStore.compressed(init, 1, "copy", 32, 0);
            Controller.RequestWork ask = controller.expectMessageClass(Controller.RequestWork.class, LONG);
            Prompt p1 = prompts.of(3);
            ask.replyTo().tell(new RolloutWorker.Work(1, new long[] {3}, new Prompt[] {p1}, v0, dense, null, 11, same));
            TrajectoryBuffer.Trajectories t1 = buffer.expectMessageClass(TrajectoryBuffer.Trajectories.class, LONG);
            Controller.TailReport r1 = controller.expectMessageClass(Controller.TailReport.class, LONG);
            assertEquals(1, r1.compressedVersion());
            assertNull(r1.shadowTails());
            TailStats a1 = TailStats.fromBytes(r1.tails());
            assertTrue(a1.totalCount() > 0);
            for (int bin = 0; bin < a1.binCount(); bin++) {
                if (a1.count(bin) > 0) {
                    assertEquals(1.0, a1.quantile(bin, 0.0), 1e-5, "min α of bin " + bin + " with an identical actor");
                }
            }
            Differences d1 = Differences.of(t1, policy);
            assertTrue(d1.tokens() > 0);
            assertTrue(d1.max() < 1e-4, "identical actor: " + d1);
            // every lease reports its rollout time; a compressed lease never measures the sparse speedup
            Controller.RolloutTimed timed = controller.expectMessageClass(Controller.RolloutTimed.class, LONG);
            assertEquals(1, timed.rollout().lease());
            assertFalse(timed.rollout().measured()); // the lease is acknowledged by the buffer, once its groups are durable

            // 2. 2-bit RTN weights (a newer version replaces the copy)
            CompressedPublished rtn2 = CheckpointStore.compressed(rtn, 2, "rtn", 2, Double.NaN);
            ask = controller.expectMessageClass(Controller.RequestWork.class, LONG);
            Prompt p2 = prompts.of(5);
            ask.replyTo().tell(new RolloutWorker.Work(2, new long[] {5}, new Prompt[] {p2}, v0, dense, null, 12, rtn2));
            TrajectoryBuffer.Trajectories t2 = buffer.expectMessageClass(TrajectoryBuffer.Trajectories.class, LONG);
            Controller.TailReport r2 = controller.expectMessageClass(Controller.TailReport.class, LONG);
            assertEquals(2, r2.compressedVersion());
            assertEquals(2.0, metrics.workerCompressedVersion.labelValues("w0").get());
            TailStats a2 = TailStats.fromBytes(r2.tails());
            try (Qwen3Model compressed = q.toModel(Devices.parse("cpu"))) {
                Differences vsCompressed = Differences.of(t2, compressed);
                Differences vsPolicy = Differences.of(t2, policy);
                assertTrue(vsCompressed.tokens() > 0);
                assertTrue(vsCompressed.max() < 1e-4, "behaviour log-probs vs the compressed model's: " + vsCompressed);
                assertTrue(vsPolicy.max() > 0.05, "the behaviour log-probs must not be the policy's: " + vsPolicy);
            }
            // the 2-bit actor's tail is below 1
            double minP5 = 1;
            for (int bin = 0; bin < a2.binCount(); bin++) {
                if (a2.count(bin) > 0) {
                    minP5 = Math.min(minP5, a2.p5(bin));
                }
            }
            assertTrue(minP5 < 0.999, "2-bit RTN p5 α " + minP5);
            controller.expectMessageClass(Controller.RolloutTimed.class, LONG);

            // 3. the policy's own weights on a float16 KV cache (kv-cache = choose): scored even under the dense
            // schedule, reported as its own option, and its behaviour log-probs are the float16 cache's, not the policy's
            ask = controller.expectMessageClass(Controller.RequestWork.class, LONG);
            Prompt p3 = prompts.of(7);
            ask.replyTo().tell(new RolloutWorker.Work(3, new long[] {7}, new Prompt[] {p3}, v0, dense, null, 13, null, true));
            TrajectoryBuffer.Trajectories t3 = buffer.expectMessageClass(TrajectoryBuffer.Trajectories.class, LONG);
            Controller.TailReport r3 = controller.expectMessageClass(Controller.TailReport.class, LONG);
            assertEquals(-1, r3.compressedVersion());
            assertEquals("plain+kv16", r3.format());
            assertTrue(TailStats.fromBytes(r3.tails()).totalCount() > 0, "a float16 lease is scored");
            assertEquals("plain+kv16", controller.expectMessageClass(Controller.RolloutTimed.class, LONG).rollout().option());
            Differences d3 = Differences.of(t3, policy);
            assertTrue(d3.tokens() > 0);
            assertTrue(d3.max() > 0 && d3.max() < 0.05, "float16 cache against the float32 policy: " + d3);
        } finally {
            kit.shutdownTestKit();
        }
    }

    @Test
    void theControllerLeasesTheProbeShareToACompressedVersionAndTheBulkOnlyWhileItsTailHolds(@TempDir Path tmp) throws Exception {
        Path init = tinyInit(tmp);
        Config c = controllerConfig(tmp, init);
        RunSettings s = RunSettings.parse(c, "test");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<RunObserver.Event> observer = kit.createTestProbe();
            TestProbe<Receptionist.Registered> registered = kit.createTestProbe();
            kit.system().receptionist().tell(Receptionist.register(RunObserver.KEY, observer.ref(), registered.ref()));
            registered.expectMessageClass(Receptionist.Registered.class);
            var controller = kit.spawn(Controller.create(s, io.tailguard.model.io.ConfigJson.read(init.resolve("config.json")), init, metrics));
            TestProbe<RolloutWorker.Command> worker = kit.createTestProbe();

            assertEquals(0, compressedLeases(controller, worker, 4), "nothing compressed yet: the policy only");
            // announced as 4-bit RTN (the controller prices it by its format; the test worker loads nothing)
            CompressedPublished v0 = CheckpointStore.compressed(init, 0, "rtn", 4, 0);
            controller.tell(v0);
            assertEquals(2, compressedLeases(controller, worker, 8), "probing: a quarter of the leases");
            ScheduleSpec used = lastSchedule;

            // a tail above τ + hysteresis in the compressed option's bin: the bulk goes to it
            controller.tell(new Controller.TailReport("w", used, tail(100, 0.99, 0.99).toBytes(), null, null, 200, 1, 0, "rtn4"));
            RunObserver.OptionWindow on = awaitOption(observer, true);
            assertTrue(on.change().contains("in use"), on.change());
            assertEquals(0.99, on.compressedP5()[1], 1e-3);
            assertEquals(6, compressedLeases(controller, worker, 8), "in use: all but a quarter");
            assertEquals(1.0, metrics.compressedRolloutInUse.get());
            // the chosen combination: the 4-bit format on its own schedule (the dense start's top rungs,
            // bins of 64 up to 96 + the longest completion), predicted cheaper than dense plain decode
            assertEquals("rtn4", on.inUse());
            assertEquals(0, on.inUseVersion());
            assertArrayEquals(used.toSchedule().budgets(), on.inUseBudgets());
            assertTrue(on.inUsePredictedSpeedup() > 1, "4-bit weights are fewer bytes: " + on.inUsePredictedSpeedup());
            assertEquals(200.0, on.inUseTokensPerSecond(), 1e-9, "200 tokens reported with 1 s of generation");
            assertTrue(Double.isNaN(on.plainTokensPerSecond()), "no plain lease reported");
            assertEquals(1.0, metrics.optionInUse.labelValues("rtn4").get());
            assertEquals(0.0, metrics.optionInUse.labelValues("plain").get());
            assertEquals(on.inUsePredictedSpeedup(), metrics.optionPredictedSpeedup.labelValues("rtn4").get(), 1e-12);
            assertTrue(metrics.optionPredictedSpeedup.labelValues("plain").get() < on.inUsePredictedSpeedup(),
                    "the same schedule with float32 weights");

            // the tail drops below τ − margin (a third of the tokens at α 0.5): back to the policy
            controller.tell(new Controller.TailReport("w", used, tail(300, 0.5, 0.99).toBytes(), null, null, 300, 1, 0, "rtn4"));
            RunObserver.OptionWindow off = awaitOption(observer, false);
            assertTrue(off.change().contains("back to the plain policy"), off.change());
            assertEquals(2, compressedLeases(controller, worker, 8));

            // the policy moves 3 versions past the compressed one (max-lag 2): no compressed lease at all
            controller.tell(new PolicyPublished(3, 3, init.toUri().toString(), "00"));
            assertEquals(0, compressedLeases(controller, worker, 8));
            assertEquals(4 + 6 + 2 + 6 + 8, metrics.optionLeases.labelValues("plain").get());
            assertEquals(2 + 6 + 2, metrics.optionLeases.labelValues("compressed").get());
            assertEquals(500, metrics.optionTokens.labelValues("compressed").get());
        } finally {
            kit.shutdownTestKit();
        }
    }

    @Test
    void aRestartedControllerOffersACompressedFormatOnTheScheduleItHadBefore(@TempDir Path tmp) throws Exception {
        Path init = tinyInit(tmp);
        Config c = controllerConfig(tmp, init);
        RunSettings s = RunSettings.parse(c, "test");
        // what a controller that ran before wrote: the 4-bit option's own schedule, at its version 7
        Schedule earned = Schedule.ofBins(64, new int[] {48, 48, 48}).withVersion(7);
        java.nio.file.Files.createDirectories(ControllerFiles.optionSchedules(s).getParent());
        java.nio.file.Files.writeString(ControllerFiles.optionSchedules(s),
                "{\"rtn4\": " + com.google.gson.JsonParser.parseString(new com.google.gson.Gson().toJson(earned.toHocon())) + "}");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            var controller = kit.spawn(Controller.create(s, io.tailguard.model.io.ConfigJson.read(init.resolve("config.json")), init, metrics));
            TestProbe<RolloutWorker.Command> worker = kit.createTestProbe();
            assertEquals(0, compressedLeases(controller, worker, 4), "nothing offered yet");
            ScheduleSpec plain = lastSchedule;
            controller.tell(CheckpointStore.compressed(init, 0, "rtn", 4, 0));
            ScheduleSpec probe = null;
            for (int i = 0; i < 8 && probe == null; i++) {
                controller.tell(new Controller.RequestWork("w", worker.ref()));
                RolloutWorker.Work w = worker.expectMessageClass(RolloutWorker.Work.class, Duration.ofSeconds(10));
                controller.tell(new Controller.LeaseDone(w.lease(), "w"));
                if (w.compressed() != null) {
                    probe = w.schedule();
                }
            }
            org.junit.jupiter.api.Assertions.assertNotNull(probe, "a probe lease to the offered format");
            assertEquals(7, probe.version(), "its own schedule's version, not the plain policy's v" + plain.version());
            assertArrayEquals(earned.budgets(), probe.toSchedule().budgets());
            assertFalse(java.util.Arrays.equals(plain.toSchedule().budgets(), probe.toSchedule().budgets()));
        } finally {
            kit.shutdownTestKit();
        }
        // and the controller keeps the file up to date with what it holds
        assertEquals(7, ControllerFiles.readOptionSchedules(s).get("rtn4").version());
    }

    private ScheduleSpec lastSchedule;

    /** Asks for n leases; how many named compressed weights (each with its own shadow schedule: the dense start's rung below). */
    private int compressedLeases(org.apache.pekko.actor.typed.ActorRef<Controller.Command> controller,
                                 TestProbe<RolloutWorker.Command> worker, int n) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            controller.tell(new Controller.RequestWork("w", worker.ref()));
            RolloutWorker.Work w = worker.expectMessageClass(RolloutWorker.Work.class, Duration.ofSeconds(10));
            // acknowledged as the buffer would: an open lease's groups count against max-groups
            controller.tell(new Controller.LeaseDone(w.lease(), "w"));
            lastSchedule = w.schedule();
            if (w.compressed() != null) {
                k++;
                org.junit.jupiter.api.Assertions.assertNotNull(w.shadow(), "a compressed lease replays its own shadow");
            }
        }
        return k;
    }

    /** n tokens at position 100 (bin 1 of 64): a third at α lo, the rest at hi (distinct by 1e-7 each). */
    static TailStats tail(int n, double lo, double hi) {
        TailStats t = new TailStats(64);
        for (int i = 0; i < n; i++) {
            t.add(100, (i % 3 == 0 ? lo : hi) - i * 1e-7);
        }
        return t;
    }

    /** The first window whose compressed option is (in use) as asked. */
    static RunObserver.OptionWindow awaitOption(TestProbe<RunObserver.Event> observer, boolean inUse) {
        long until = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < until) {
            RunObserver.Event e = observer.receiveMessage(Duration.ofSeconds(10));
            if (e instanceof RunObserver.Window w && w.option().compressedInUse() == inUse && w.option().change() != null) {
                return w.option();
            }
        }
        throw new AssertionError("no window with the compressed option " + (inUse ? "in use" : "out of use"));
    }

    /**
     * Max |Δ| between a lease's recorded log-probs and those of {@code model} scored here, dense and
     * teacher-forced: max over behaviour log-probs.
     */
    record Differences(long tokens, double max) {
        static Differences of(TrajectoryBuffer.Trajectories t, Qwen3Model model) {
            List<int[]> prompts = new ArrayList<>();
            List<int[]> outputs = new ArrayList<>();
            List<TrajectoryBuffer.Sample> samples = new ArrayList<>();
            for (TrajectoryBuffer.GroupResult g : t.groups()) {
                for (TrajectoryBuffer.Sample x : g.samples()) {
                    if (x.output().length > 0) {
                        prompts.add(x.prompt());
                        outputs.add(x.output());
                        samples.add(x);
                    }
                }
            }
            List<Scorer.Scores> ref = Scorer.score(model, prompts, outputs, Scorer.Options.LOGPROBS_ONLY);
            long n = 0;
            double max = 0;
            for (int i = 0; i < samples.size(); i++) {
                float[] want = ref.get(i).logprobs();
                TrajectoryBuffer.Sample x = samples.get(i);
                assertEquals(want.length, x.behaviourLogprobs().length);
                for (int k = 0; k < want.length; k++) {
                    max = Math.max(max, Math.abs(want[k] - x.behaviourLogprobs()[k]));
                    n++;
                }
            }
            return new Differences(n, max);
        }
    }
}
