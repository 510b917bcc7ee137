package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import io.tailguard.actors.cli.Main;
import io.tailguard.model.io.ConfigJson;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Leases whose trajectories are too large to send: a rollout worker tells the controller instead of
 * sending them (KryoSerializerTest checks the refusal it asks for). A delivered lease ends the streak;
 * tailguard.cluster.max-oversized-leases in a row stop the run with one line naming both keys,
 * instead of generating forever what no buffer receives.
 */
class LeaseOversizedTest {
    static final String REFUSAL = "tailguard wire: a Trajectories message of 40000000 bytes is over the 33488896 bytes of "
            + "tailguard.cluster.max-message-size; not sent: raise it, or lower tailguard.rollout.prompts-per-lease or the generation length";

    @Test
    void oversizedLeasesInARowStopTheRunAndADeliveredOneEndsTheStreak(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Config c = CompressedRolloutTest.config(tmp, init, "tailguard.cluster.max-oversized-leases = 2");
        RunSettings s = RunSettings.parse(c, "test");
        ActorTestKit kit = ActorTestKit.create(c);
        try (NodeMetrics metrics = new NodeMetrics()) {
            var controller = kit.spawn(Controller.create(s, ConfigJson.read(init.resolve("config.json")), init, metrics));
            var stop = RunStop.of(kit.system()).reason();
            controller.tell(new Controller.LeaseOversized(1, "w0", REFUSAL));
            controller.tell(new Controller.LeaseDone(2, "w0"));
            controller.tell(new Controller.LeaseOversized(3, "w0", REFUSAL));
            // a lease round trip: the controller has handled the three messages before it answers
            var worker = kit.<RolloutWorker.Command>createTestProbe();
            controller.tell(new Controller.RequestWork("w0", worker.ref()));
            worker.expectMessageClass(RolloutWorker.Work.class, java.time.Duration.ofSeconds(30));
            assertFalse(stop.isDone(), "one in a row after a delivered lease: the run goes on");
            controller.tell(new Controller.LeaseOversized(4, "w1", REFUSAL));
            String line = stop.get(10, TimeUnit.SECONDS);
            assertEquals("the run stops: lease 4 of w1 was not delivered: " + REFUSAL
                    + " (2 failures in a row; tailguard.cluster.max-oversized-leases = 2)", line);
            assertTrue(line.contains("tailguard.cluster.max-message-size"), line);
        } finally {
            kit.shutdownTestKit();
        }
    }
}
