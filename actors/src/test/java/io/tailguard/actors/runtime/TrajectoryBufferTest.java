package io.tailguard.actors.runtime;

import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The buffer's staleness bound is live: a LiveSettings from the controller changes the next batch cut. */
class TrajectoryBufferTest {
    static ActorTestKit kit;

    @BeforeAll
    static void start() {
        kit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local\npekko.remote.artery.enabled = off")
                .withFallback(ConfigFactory.load()));
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    static TrajectoryBuffer.Trajectories lease(long group, long version) {
        TrajectoryBuffer.Sample x = new TrajectoryBuffer.Sample(new int[] {1}, new int[] {2}, new float[] {-1f}, new float[] {-1f}, 1, "ok");
        return new TrajectoryBuffer.Trajectories(group, "w", version, new TrajectoryBuffer.GroupResult[] {
                new TrajectoryBuffer.GroupResult(group, "p" + group, "w", new TrajectoryBuffer.Sample[] {x, x})}, 1.0, new ScheduleSpec("FIXED", 1, 0, new int[] {48}));
    }

    @Test
    void aTunedStalenessBoundDropsOlderGroupsFromTheNextBatch() {
        RunSettings s = RunSettings.parse(RunSettingsTest.with("tailguard.buffer.staleness = 2"), "test");
        NodeMetrics metrics = new NodeMetrics();
        TestProbe<Controller.Command> controller = kit.createTestProbe();
        ActorRef<TrajectoryBuffer.Command> buffer = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
        Controller.WantSettings want = controller.expectMessageClass(Controller.WantSettings.class);
        assertEquals(buffer, want.replyTo());
        assertEquals(2.0, metrics.stalenessBound.get());
        TestProbe<TrajectoryBuffer.Batch> learner = kit.createTestProbe();

        // bound 2: groups of versions 1, 2 and 3 are all within 2 of learner version 3
        buffer.tell(lease(10, 1));
        buffer.tell(lease(11, 2));
        buffer.tell(lease(12, 3));
        buffer.tell(new TrajectoryBuffer.NextBatch(1, 3, learner.ref()));
        TrajectoryBuffer.Batch b = learner.expectMessageClass(TrajectoryBuffer.Batch.class, Duration.ofSeconds(5));
        assertEquals(10, b.groups()[0].groupId());
        assertEquals(0, b.droppedStale());

        // bound 0 (tuned): at learner version 3 the group of version 2 is stale, 3 is not
        buffer.tell(new LiveSettings(1, 0, 2e-4, false));
        buffer.tell(new TrajectoryBuffer.NextBatch(1, 3, learner.ref()));
        b = learner.expectMessageClass(TrajectoryBuffer.Batch.class, Duration.ofSeconds(5));
        assertEquals(12, b.groups()[0].groupId());
        assertArrayEquals(new long[] {3}, b.policyVersions());
        assertEquals(1, b.droppedStale());
        assertEquals(0.0, metrics.stalenessBound.get());
        metrics.close();
    }
}
