package io.tailguard.actors.integration;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.actors.runtime.ScheduleSpec;
import io.tailguard.actors.runtime.TailguardNode;
import io.tailguard.actors.runtime.TrajectoryBuffer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.serialization.SerializationExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static io.tailguard.actors.integration.ThreeNodeClusterTest.sum;
import static io.tailguard.actors.integration.ThreeNodeClusterTest.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A lease's trajectories of long generations cross two JVMs: 2 prompts × 8 samples × 48K generated
 * tokens (over Artery's 4 MiB frame) sent from this JVM's node to the trajectory buffer of a learner
 * node in another JVM arrive whole, over the large-message stream. A lease over
 * tailguard.cluster.max-message-size (8 MiB here) is not sent but counted on the sender, and the
 * next lease still arrives.
 */
class LargeMessageTest {
    static final int GENERATED = 48 * 1024;

    /** A lease's result: groups × samples, each a 64-token prompt and `generated` tokens with their log-probs. */
    static TrajectoryBuffer.Trajectories lease(long lease, long firstGroup, int groups, int samples, int generated) {
        TrajectoryBuffer.GroupResult[] gs = new TrajectoryBuffer.GroupResult[groups];
        for (int g = 0; g < groups; g++) {
            TrajectoryBuffer.Sample[] ss = new TrajectoryBuffer.Sample[samples];
            for (int k = 0; k < samples; k++) {
                int[] out = new int[generated];
                float[] lp = new float[generated];
                for (int i = 0; i < generated; i++) {
                    out[i] = (int) ((i * 7919L + k) % 151936); // token ids over a Qwen3-sized vocabulary
                    lp[i] = -0.001f * ((i + k) % 2000);
                }
                ss[k] = new TrajectoryBuffer.Sample(new int[64], out, lp, k % 2, k % 2 == 1 ? "correct" : "wrong");
            }
            gs[g] = new TrajectoryBuffer.GroupResult(firstGroup + g, "kv-recall/7/" + (firstGroup + g), "large-lease@test", ss);
        }
        return new TrajectoryBuffer.Trajectories(lease, "large-lease@test", 0, gs, 100.0, new ScheduleSpec("DENSE", 0, 64, new int[0]));
    }

    @Test
    void aLeaseOfLongGenerationsCrossesTwoJvms(@TempDir Path tmp) throws Exception {
        // the learner waits for 4 groups, so the buffer keeps what arrives (nothing is trained on)
        Path conf = ThreeNodeClusterTest.clusterConf(tmp, 1000, "60s", "tailguard.learner.groups-per-step = 4",
                "tailguard.cluster.max-message-size = 8 MiB");
        int seed = Ports.freePort();
        List<ThreeNodeClusterTest.Node> nodes = new ArrayList<>();
        int artery = Ports.freePort();
        Config c = ConfigFactory.parseString(String.join("\n",
                        "pekko.remote.artery.canonical.port = " + artery,
                        "pekko.cluster.seed-nodes = [\"pekko://tailguard@127.0.0.1:" + seed + "\"]",
                        "tailguard.metrics.port = 0", "tailguard.rollout.workers = 0"))
                .withFallback(ConfigFactory.parseFile(conf.toFile()))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, conf.toString());
        try {
            ThreeNodeClusterTest.Node learner = ThreeNodeClusterTest.start(tmp, "controller-learner", conf, "controller,learner", seed, seed);
            nodes.add(learner);
            try (TailguardNode here = new TailguardNode(c, s, Set.of("rollout"), tmp.resolve("init"), "cpu", false, null)) {
                ActorRef<TrajectoryBuffer.Command> buffer = findBuffer(here);
                TrajectoryBuffer.Trajectories six = lease(1, 0, 2, 8, GENERATED);
                int bytes = SerializationExtension.get(Adapter.toClassic(here.system())).serialize(six).get().length;
                assertTrue(bytes > 4 * 1024 * 1024 && bytes < 8 * 1024 * 1024, bytes + " bytes");
                buffer.tell(six);
                waitUntil(learner, 120, m -> sum(m, "tailguard_buffer_groups", null) == 2);

                // 4 prompts: over 8 MiB, refused and counted here; the lease after it still arrives
                long before = oversized();
                buffer.tell(lease(2, 10, 4, 8, GENERATED));
                buffer.tell(lease(3, 20, 1, 8, 64));
                String m = waitUntil(learner, 120, x -> sum(x, "tailguard_buffer_groups", null) >= 3);
                assertEquals(3, sum(m, "tailguard_buffer_groups", null), "only the small lease arrived after the large one:\n" + m);
                assertEquals(before + 1, oversized());
            }
        } finally {
            ThreeNodeClusterTest.stopAll(nodes);
        }
    }

    /** Trajectories refused for their size in this JVM (the serializer's count, which tailguard_wire_messages_oversized_total exports). */
    static long oversized() {
        return io.tailguard.actors.runtime.KryoSerializer.oversized().getOrDefault("Trajectories", 0L);
    }

    /** The learner node's trajectory buffer, once this member has joined and the receptionist lists it. */
    static ActorRef<TrajectoryBuffer.Command> findBuffer(TailguardNode n) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (System.nanoTime() < deadline) {
            Receptionist.Listing l = AskPattern.<Receptionist.Command, Receptionist.Listing>ask(n.system().receptionist(),
                    r -> Receptionist.find(TrajectoryBuffer.KEY, r), Duration.ofSeconds(5), n.system().scheduler())
                    .toCompletableFuture().get();
            Set<ActorRef<TrajectoryBuffer.Command>> found = l.getServiceInstances(TrajectoryBuffer.KEY);
            if (!found.isEmpty()) {
                return found.iterator().next();
            }
            Thread.sleep(500);
        }
        throw new AssertionError("no trajectory buffer listed within 120 s");
    }
}
