package io.tailguard.actors.runtime;

import io.tailguard.rollout.tasks.Prompt;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.NotSerializableException;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every protocol record round-trips through the wire serializer; unknown classes and bad frames are refused. */
class KryoSerializerTest {
    static ActorTestKit kit;
    static Serialization serialization;

    @BeforeAll
    static void start() {
        kit = ActorTestKit.create(com.typesafe.config.ConfigFactory.parseString(
                "pekko.actor.provider = local\npekko.remote.artery.enabled = off").withFallback(com.typesafe.config.ConfigFactory.load()));
        serialization = SerializationExtension.get(Adapter.toClassic(kit.system()));
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    /** One filled-in instance of every wire record (nulls only where the protocol allows them). */
    static List<Object> samples() {
        ActorRef<RolloutWorker.Command> worker = kit.<RolloutWorker.Command>createTestProbe().ref();
        ActorRef<Controller.TuneResult> tuneReply = kit.<Controller.TuneResult>createTestProbe().ref();
        ActorRef<ControllerStatus> statusReply = kit.<ControllerStatus>createTestProbe().ref();
        ActorRef<TrajectoryBuffer.Batch> batchReply = kit.<TrajectoryBuffer.Batch>createTestProbe().ref();
        ScheduleSpec spec = new ScheduleSpec("BINS", 4, 64, new int[] {64, 96, 128});
        PolicyPublished policy = new PolicyPublished(3, 3, "file:///tmp/store/v000003/", "ab".repeat(32));
        CompressedPublished compressed = new CompressedPublished(2, "file:///tmp/store/compressed/v000002-rtn4/", "cd".repeat(32),
                "rtn", 4, 0.03);
        TrajectoryBuffer.Sample sample = new TrajectoryBuffer.Sample(new int[] {1, 5, 9}, new int[] {7, 2}, new float[] {-0.5f, -1f},
                1.0, "correct");
        TrajectoryBuffer.GroupResult group = new TrajectoryBuffer.GroupResult(17, "kv-recall/7/17", "worker-0@h:1",
                new TrajectoryBuffer.Sample[] {sample, sample});
        List<Object> out = new ArrayList<>();
        out.add(spec);
        out.add(policy);
        out.add(new Controller.RequestWork("worker-0@h:1", worker));
        out.add(new Controller.LeaseDone(5, "worker-0@h:1"));
        out.add(new Controller.LeaseOversized(6, "worker-0@h:1", "tailguard wire: a Trajectories message of 9 bytes is over the 8 bytes"));
        out.add(new Controller.TailReport("w", spec, new byte[] {1, 2, 3}, null, null, 120, 1.5, -1, ""));
        out.add(new Controller.TailReport("w", spec, new byte[] {1, 2, 3}, spec, new byte[] {4}, 120, 1.5, 10, "yaqa_b4"));
        out.add(new Controller.BufferDepth(12));
        out.add(new Controller.HoldLeases(true));
        out.add(new Controller.Tune(new String[] {"tau"}, new String[] {"0.9"}, true, tuneReply));
        out.add(new Controller.TuneResult(false, "tau: must be in (0, 1), got 2.0", 4, 2, false));
        out.add(new Controller.TuneResult(true, "applied tailguard.controller.tau 0.86 -> 0.9; settings v3; schedule v5", 5, 3, true));
        out.add(new Controller.GetStatus(statusReply));
        out.add(new ControllerStatus(new ControllerStatus.Schedule(4, new int[] {64, 96}, new double[] {0.9, Double.NaN}, 0.86, 1.4),
                new ControllerStatus.Run(3, 1, 40, 2, 310.5, new String[] {"pekko://tailguard@127.0.0.1:25520 Up [controller]"}),
                new LiveSettings(2, 1, 5e-5, true),
                new TuningBook.Tuned[] {new TuningBook.Tuned("tailguard.controller.tau", "0.9", "0.86")},
                new ControllerStatus.CompressedOption(true, 10, "v10 yaqa_b 4-bit", true, 0.25, 10, new double[] {0.91, Double.NaN}, 0.7,
                        "compressed v10 in use"),
                new ControllerStatus.Failures(3, 1, 5, "cannot write /tmp/run/controller/state.json: No space left on device"),
                AdminServerTest.PLAIN_ONLY, new ControllerStatus.Failures(1, 1, 3, "compressing policy v10 failed: java.io.IOException: disk full")));
        out.add(new Controller.CompressionJobs(new ControllerStatus.Failures(2, 0, 3, "compressing policy v5 failed: boom")));
        out.add(new ControllerStatus.Approximation("yaqa_b4", 1.6, "in use", new ControllerStatus.Option[] {
                new ControllerStatus.Option("yaqa_b4", "yaqa_b4 (4-bit, group 32)", 10, true, 4, new int[] {48}, new double[] {0.9},
                        1e6, 3.0, 161.2, "in use")}));
        out.add(new ControllerStatus.Option("plain", "plain", -1, false, 3, new int[] {64}, new double[] {Double.NaN}, 2e6, 1.5,
                Double.NaN, "probed: no bin has 100 tokens yet"));
        out.add(new ControllerStatus.Failures(0, 0, 5, null));
        out.add(new ControllerStatus.Schedule(1, new int[] {48}, new double[] {Double.NaN}, 0.8, 1.0));
        out.add(new ControllerStatus.Run(-1, 0, 0, 0, 0, new String[0]));
        out.add(new TuningBook.Tuned("tailguard.learner.lr", "7.0E-5", "2.0E-4"));
        out.add(new LiveSettings(2, 1, 5e-5, true));
        out.add(new Controller.WantSettings(kit.<LiveSettings>createTestProbe().ref()));
        out.add(new RolloutWorker.Work(9, new long[] {17, 18}, new Prompt[] {new Prompt("p1", "a=1;?a", "1"),
                new Prompt("p2", "b=2;?b", "2")}, policy, spec, null, 77L, null));
        out.add(new RolloutWorker.Work(10, new long[] {19}, new Prompt[] {new Prompt("p3", "c=3;?c", "3")}, policy, spec, null, 78L,
                compressed));
        out.add(compressed);
        out.add(new RolloutWorker.NoWork(250));
        out.add(sample);
        out.add(group);
        out.add(new TrajectoryBuffer.Trajectories(9, "w", 3, new TrajectoryBuffer.GroupResult[] {group}, 123.5, spec));
        out.add(new TrajectoryBuffer.NextBatch(4, 3, batchReply));
        out.add(new TrajectoryBuffer.Batch(new TrajectoryBuffer.GroupResult[] {group}, new long[] {3}, 1, 0, 99.0, new ScheduleSpec[] {spec},
                new long[] {4}, new int[] {1}));
        out.add(new RunObserver.Step(2, 2, 0.5, 0.25, 4, 1, 0, 1, -0.01, 0.1, 0.02, 1e-3, 0.8, 512, 300, 1_700_000_000_000L, 5e-5));
        out.add(new RunObserver.Window(1_700_000_000_000L, 5, new int[] {64, 128}, new double[] {0.91, 0.84}, new long[] {310, 12}, 0.86, 1.7,
                new String[] {"bin 1: 96 -> 128 (p5 α 0.80 < 0.84)"},
                new RunObserver.OptionWindow(10, true, new double[] {0.93, Double.NaN}, 120, 480, "compressed v10: in use", "yaqa_b4", 10, 6,
                        new int[] {48, 96}, 3.1, 161.2, 100.5)));
        out.add(new RunObserver.Window(1_700_000_000_000L, 5, new int[] {64}, new double[] {0.91}, new long[] {310}, 0.86, 1.7,
                new String[0], new RunObserver.OptionWindow(-1, false, new double[] {Double.NaN}, 310, 0, null, "plain", -1, 5,
                new int[] {64}, 1.7, Double.NaN, Double.NaN)));
        out.add(new ControllerStatus.CompressedOption(false, -1, "", false, 0.25, 10, new double[0], 0, "compressed rollout off"));
        out.add(new RunObserver.OptionWindow(-1, false, new double[] {Double.NaN}, 12, 0, null, "plain", -1, 1, new int[] {64}, 1.0, 90.0, 90.0));
        out.add(new RunObserver.Evaluated(0, 0.3, 1_700_000_000_000L, 2.5));
        out.add(new RunObserver.Finished(30, "all steps done"));
        out.add(new RunObserver.Compressed(10, "yaqa_b", 4, 0.0123, 123456, 7.5, "/tmp/store/compressed/v000010-yaqa_b4"));
        RunObserver.Rollout measured = new RunObserver.Rollout(1_700_000_000_000L, "worker-0@h:1", 9, 4, 16, 63, 0.4, 2.5, true, 1.9,
                3.1, 0.41, 0.02, 0.035, "yaqa_b4", 6.5, 0.7, 0.3);
        out.add(measured);
        out.add(new Controller.RolloutTimed(measured));
        out.add(new Controller.RolloutTimed(new RunObserver.Rollout(1_700_000_000_000L, "w", 10, 4, 16, 0, 0.4, 0, false,
                Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, RunObserver.Rollout.PLAIN, 3.0, 0, 0)));
        return out;
    }

    @Test
    void everyRegisteredProtocolRecordHasASampleAndRoundTrips() throws Exception {
        List<Object> samples = samples();
        Set<Class<?>> covered = new HashSet<>();
        for (Object o : samples) {
            covered.add(o.getClass());
            Serializer ser = serialization.findSerializerFor(o);
            assertInstanceOf(KryoSerializer.class, ser, o.getClass() + " must go through the Kryo serializer");
            byte[] bytes = ser.toBinary(o);
            Object back = ser.fromBinary(bytes, o.getClass());
            assertDeepEquals(o, back, o.getClass().getSimpleName());
        }
        for (Class<?> c : WireRegistry.CLASSES) {
            if (c.isRecord() && Wire.class.isAssignableFrom(c)) {
                assertTrue(covered.contains(c), c.getName() + " is registered but has no round-trip sample");
            }
        }
    }

    record Unlisted(int x) implements Wire {}

    @Test
    void refusesAClassThatIsNotRegistered() {
        Serializer ser = serialization.findSerializerFor(new Unlisted(1));
        assertInstanceOf(KryoSerializer.class, ser);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ser.toBinary(new Unlisted(1)));
        assertTrue(e.getMessage().contains("not registered"), e.getMessage());
    }

    @Test
    void dropsAndCountsTruncatedAndCorruptedFrames() throws Exception {
        Object msg = new Controller.LeaseDone(5, "worker-0");
        Serializer ser = serialization.findSerializerFor(msg);
        byte[] good = ser.toBinary(msg);
        long before = KryoSerializer.droppedFrames();
        byte[] flipped = good.clone();
        flipped[flipped.length - 1] ^= 0x5A;
        assertThrows(NotSerializableException.class, () -> ser.fromBinary(flipped, msg.getClass()));
        byte[] truncated = Arrays.copyOf(good, good.length - 3);
        assertThrows(NotSerializableException.class, () -> ser.fromBinary(truncated, msg.getClass()));
        assertThrows(NotSerializableException.class, () -> ser.fromBinary(new byte[] {9}, msg.getClass()));
        assertEquals(before + 3, KryoSerializer.droppedFrames());
        // the node goes on: the next good frame still decodes
        assertEquals(msg, ser.fromBinary(good, msg.getClass()));
    }

    /**
     * A message over its bound is refused before Artery sees it, named and counted by type: the
     * trajectories (the large-message stream) against the large frame, any other message against the
     * ordinary frame, each less the envelope. Frames of 128 and 256 KiB here: bounds of 64 and 192 KiB.
     */
    @Test
    void aMessageOverItsBoundIsRefusedNamedAndCounted() throws Exception {
        ActorTestKit small = ActorTestKit.create(com.typesafe.config.ConfigFactory.parseString(String.join("\n",
                "pekko.actor.provider = local", "pekko.remote.artery.enabled = off",
                "pekko.remote.artery.advanced.maximum-frame-size = 128 KiB",
                "pekko.remote.artery.advanced.maximum-large-frame-size = 256 KiB")).withFallback(com.typesafe.config.ConfigFactory.load()));
        try {
            Serialization ser = SerializationExtension.get(Adapter.toClassic(small.system()));
            // one group of one sample whose output is n tokens: 5 to 8 bytes a token (an id, a log-prob), and some framing
            java.util.function.IntFunction<TrajectoryBuffer.Trajectories> lease = n -> {
                int[] ids = new int[n];
                float[] lp = new float[n];
                for (int i = 0; i < n; i++) {
                    ids[i] = (int) ((i * 7919L) % 151936);
                    lp[i] = -0.001f * (i % 1000);
                }
                return new TrajectoryBuffer.Trajectories(1, "w", 0, new TrajectoryBuffer.GroupResult[] {new TrajectoryBuffer.GroupResult(1,
                        "p", "w", new TrajectoryBuffer.Sample[] {new TrajectoryBuffer.Sample(new int[16], ids, lp, 1.0, "correct")})},
                        1.0, new ScheduleSpec("DENSE", 0, 64, new int[0]));
            };
            long before = KryoSerializer.oversized().getOrDefault("Trajectories", 0L);
            // 12000 tokens (60 to 96 KB): over the ordinary bound, under the large one: sent
            TrajectoryBuffer.Trajectories fits = lease.apply(12000);
            byte[] b = ser.findSerializerFor(fits).toBinary(fits);
            assertTrue(b.length > 64 * 1024 && b.length < 192 * 1024, b.length + " bytes");
            assertDeepEquals(fits, ser.findSerializerFor(fits).fromBinary(b, fits.getClass()), "trajectories");
            // 40000 tokens (200 to 320 KB): over the large bound
            TrajectoryBuffer.Trajectories over = lease.apply(40000);
            org.apache.pekko.remote.OversizedPayloadException e = assertThrows(org.apache.pekko.remote.OversizedPayloadException.class,
                    () -> ser.findSerializerFor(over).toBinary(over));
            assertTrue(e.getMessage().contains("a Trajectories message of ") && e.getMessage().contains("over the " + (192 * 1024) + " bytes of tailguard.cluster.max-message-size"), e.getMessage());
            assertEquals(before + 1, KryoSerializer.oversized().get("Trajectories"));
            // asked before a send, as a rollout worker asks: the same line and count, and nothing for one that fits
            assertEquals(null, KryoSerializer.refusal(small.system(), fits));
            assertEquals(e.getMessage(), KryoSerializer.refusal(small.system(), over));
            assertEquals(before + 2, KryoSerializer.oversized().get("Trajectories"));
            // a lease of prompts over the ordinary bound (64 KiB): refused, naming Artery's frame
            Prompt big = new Prompt("p", "x".repeat(70 * 1024), "1");
            RolloutWorker.Work work = new RolloutWorker.Work(1, new long[] {1}, new Prompt[] {big},
                    new PolicyPublished(1, 1, "file:///tmp/v1/", "ab"), new ScheduleSpec("DENSE", 0, 64, new int[0]), null, 1, null);
            org.apache.pekko.remote.OversizedPayloadException w = assertThrows(org.apache.pekko.remote.OversizedPayloadException.class,
                    () -> ser.findSerializerFor(work).toBinary(work));
            assertTrue(w.getMessage().contains("a Work message") && w.getMessage().contains("over the " + (64 * 1024) + " bytes")
                    && w.getMessage().contains("pekko.remote.artery.advanced.maximum-frame-size"), w.getMessage());
            assertTrue(KryoSerializer.oversized().get("Work") >= 1);
        } finally {
            small.shutdownTestKit();
        }
    }

    /** Records compared component by component, arrays by content, nested records recursively. */
    static void assertDeepEquals(Object a, Object b, String where) throws Exception {
        if (a == null || b == null) {
            assertEquals(a, b, where);
            return;
        }
        assertEquals(a.getClass(), b.getClass(), where);
        if (a.getClass().isRecord()) {
            for (RecordComponent rc : a.getClass().getRecordComponents()) {
                assertDeepEquals(rc.getAccessor().invoke(a), rc.getAccessor().invoke(b), where + "." + rc.getName());
            }
        } else if (a.getClass().isArray() && !a.getClass().getComponentType().isPrimitive()) {
            Object[] x = (Object[]) a;
            Object[] y = (Object[]) b;
            assertEquals(x.length, y.length, where);
            for (int i = 0; i < x.length; i++) {
                assertDeepEquals(x[i], y[i], where + "[" + i + "]");
            }
        } else if (a.getClass().isArray()) {
            assertTrue(Arrays.deepEquals(new Object[] {a}, new Object[] {b}), where);
        } else {
            assertEquals(a, b, where);
        }
    }

}
