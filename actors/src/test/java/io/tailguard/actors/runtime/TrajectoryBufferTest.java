package io.tailguard.actors.runtime;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The buffer: its staleness bound is live; a group is in the journal before its lease is
 * acknowledged; a buffer started over a journal hands the learner every journaled group its ledger
 * does not hold, once, in completion order; stale drops are counted by length bin; the run's counts
 * add up in ledger.json; a checkpoint trims the journal.
 */
class TrajectoryBufferTest {
    static final Duration WAIT = Duration.ofSeconds(5);
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
        return lease(group, version, 1, 1);
    }

    /** Group {@code group} as lease {@code group}: two samples of prompt and output tokens each. */
    static TrajectoryBuffer.Trajectories lease(long group, long version, int prompt, int output) {
        TrajectoryBuffer.Sample x = new TrajectoryBuffer.Sample(new int[prompt], new int[output], new float[output], 1, "ok");
        return new TrajectoryBuffer.Trajectories(group, "w", version, new TrajectoryBuffer.GroupResult[] {
                new TrajectoryBuffer.GroupResult(group, "p" + group, "w", new TrajectoryBuffer.Sample[] {x, x})}, 1.0,
                new ScheduleSpec("FIXED", 1, 0, new int[] {48}));
    }

    static RunSettings settings(Path out, String extra) {
        return RunSettings.parse(RunSettingsTest.with("tailguard.train.out = \"" + out + "\"\n" + extra), "test");
    }

    /** The next lease the buffer acknowledges to the controller (other messages skipped). */
    static Controller.LeaseDone leaseDone(TestProbe<Controller.Command> controller) {
        while (true) {
            Controller.Command c = controller.receiveMessage(WAIT);
            if (c instanceof Controller.LeaseDone d) {
                return d;
            }
        }
    }

    static long[] ids(TrajectoryBuffer.Batch b) {
        return Arrays.stream(b.groups()).mapToLong(TrajectoryBuffer.GroupResult::groupId).toArray();
    }

    static JsonObject ledgerJson(Path out) throws Exception {
        return JsonParser.parseString(Files.readString(out.resolve("store/journal/ledger.json"))).getAsJsonObject();
    }

    static void assertAddsUp(JsonObject j) {
        assertEquals(j.get("completed").getAsLong(), j.get("trained").getAsLong() + j.get("dropped_stale").getAsLong()
                + j.get("buffered").getAsLong(), j.toString());
    }

    @Test
    void aTunedStalenessBoundDropsOlderGroupsFromTheNextBatch(@TempDir Path out) {
        RunSettings s = settings(out, "tailguard.buffer.staleness = 2");
        NodeMetrics metrics = new NodeMetrics();
        TestProbe<Controller.Command> controller = kit.createTestProbe();
        ActorRef<TrajectoryBuffer.Command> buffer = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
        Controller.WantSettings want = controller.expectMessageClass(Controller.WantSettings.class);
        assertEquals(buffer, want.replyTo());
        assertEquals(2.0, metrics.stalenessBound.get());
        buffer.tell(new TrajectoryBuffer.Resume(new GroupLedger(), false));
        TestProbe<TrajectoryBuffer.Batch> learner = kit.createTestProbe();

        // bound 2: groups of versions 1, 2 and 3 are all within 2 of learner version 3
        buffer.tell(lease(10, 1));
        buffer.tell(lease(11, 2));
        buffer.tell(lease(12, 3));
        buffer.tell(new TrajectoryBuffer.NextBatch(1, 3, learner.ref()));
        TrajectoryBuffer.Batch b = learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT);
        assertEquals(10, b.groups()[0].groupId());
        assertEquals(0, b.droppedStale());

        // bound 0 (tuned): at learner version 3 the group of version 2 is stale, 3 is not
        buffer.tell(new LiveSettings(1, 0, 2e-4, false));
        buffer.tell(new TrajectoryBuffer.NextBatch(1, 3, learner.ref()));
        b = learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT);
        assertEquals(12, b.groups()[0].groupId());
        assertArrayEquals(new long[] {3}, b.policyVersions());
        assertEquals(1, b.droppedStale());
        assertArrayEquals(new long[] {11}, b.staleIds());
        assertEquals(0.0, metrics.stalenessBound.get());
        // stopped (and waited for) before the temporary directory goes: the buffer writes its ledger
        // after handing out a batch, and a write in flight made the directory's deletion fail
        kit.stop(buffer);
        metrics.close();
    }

    @Test
    void aGroupIsInTheJournalBeforeItsLeaseIsAcknowledgedAndADuplicateIsAcknowledgedOnce(@TempDir Path out) throws Exception {
        RunSettings s = settings(out, "");
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            ActorRef<TrajectoryBuffer.Command> buffer = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            buffer.tell(new TrajectoryBuffer.Resume(new GroupLedger(), false));
            buffer.tell(lease(10, 1));
            assertEquals(10, leaseDone(controller).lease());
            GroupJournal journal = new GroupJournal(out.resolve("store/journal"));
            assertTrue(journal.contains(10), "acknowledged before it was journaled");

            // the same group again (a re-issued lease): acknowledged, not journaled a second time
            TrajectoryBuffer.Trajectories again = lease(10, 1);
            buffer.tell(new TrajectoryBuffer.Trajectories(11, "w2", 1, again.groups(), 1.0, again.schedule()));
            assertEquals(11, leaseDone(controller).lease());
            assertEquals(1, new GroupJournal(out.resolve("store/journal")).size());
            JsonObject j = ledgerJson(out);
            assertEquals(1, j.get("completed").getAsLong());
            assertEquals(1, j.get("buffered").getAsLong());
            assertEquals(1, j.get("duplicates").getAsLong());
            assertAddsUp(j);
            kit.stop(buffer);
        }
    }

    @Test
    void aBufferOverTheJournalHandsOutEveryGroupItsLedgerDoesNotHoldOnceInCompletionOrder(@TempDir Path out) throws Exception {
        RunSettings s = settings(out, "");
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            TestProbe<TrajectoryBuffer.Batch> learner = kit.createTestProbe();
            ActorRef<TrajectoryBuffer.Command> first = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            first.tell(new TrajectoryBuffer.Resume(new GroupLedger(), false));
            for (long g : new long[] {7, 3, 5}) {
                first.tell(lease(g, 1));
                assertEquals(g, leaseDone(controller).lease());
            }
            first.tell(new TrajectoryBuffer.NextBatch(1, 1, learner.ref()));
            assertArrayEquals(new long[] {7}, ids(learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT)));
            first.tell(new TrajectoryBuffer.Trained(new long[] {7}));
            first.tell(new TrajectoryBuffer.NextBatch(2, 1, learner.ref()));
            assertArrayEquals(new long[] {3, 5}, ids(learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT)));
            kit.stop(first);

            // the learner died before a checkpoint held any of them: all three again, in the order they completed
            ActorRef<TrajectoryBuffer.Command> second = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            second.tell(new TrajectoryBuffer.Resume(new GroupLedger(), false));
            second.tell(new TrajectoryBuffer.NextBatch(3, 1, learner.ref()));
            assertArrayEquals(new long[] {7, 3, 5}, ids(learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT)));
            kit.stop(second);

            // its checkpoint holds 7 as trained: 3 and 5 only, and 7 delivered again is a duplicate
            GroupLedger atCheckpoint = new GroupLedger();
            atCheckpoint.train(7);
            ActorRef<TrajectoryBuffer.Command> third = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            third.tell(new TrajectoryBuffer.Resume(atCheckpoint.copy(), false));
            third.tell(lease(7, 1));
            assertEquals(7, leaseDone(controller).lease());
            third.tell(new TrajectoryBuffer.NextBatch(2, 1, learner.ref()));
            assertArrayEquals(new long[] {3, 5}, ids(learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT)));
            third.tell(new TrajectoryBuffer.Trained(new long[] {3, 5}));
            // a late answer to a restarted buffer's question changes nothing once the learner's own Resume came
            third.tell(new TrajectoryBuffer.Resume(new GroupLedger(), true));
            third.tell(lease(9, 1));
            assertEquals(9, leaseDone(controller).lease());
            JsonObject j = ledgerJson(out);
            assertEquals(4, j.get("completed").getAsLong()); // 7, 3, 5, 9
            assertEquals(3, j.get("trained").getAsLong());
            assertEquals(1, j.get("buffered").getAsLong());
            assertEquals("[[3,3],[5,5],[7,7]]", j.get("trained_ids").toString());
            assertEquals("[9]", j.get("buffered_ids").toString());
            assertAddsUp(j);
            assertEquals(4.0, metrics.registry().scrape().stream()
                    .filter(m -> m.getMetadata().getPrometheusName().equals("tailguard_trajectories_completed"))
                    .mapToDouble(m -> ((io.prometheus.metrics.model.snapshots.CounterSnapshot) m).getDataPoints().get(0).getValue())
                    .sum());

            // 7 was trimmed when the buffer took the checkpoint's ledger; 3 and 5 once a checkpoint holds them
            assertFalse(new GroupJournal(out.resolve("store/journal")).contains(7));
            third.tell(new TrajectoryBuffer.Checkpointed(new long[] {3, 5}));
            third.tell(lease(11, 1));
            leaseDone(controller);
            GroupJournal trimmed = new GroupJournal(out.resolve("store/journal"));
            assertEquals(java.util.Set.of(9L, 11L), trimmed.ids());
            kit.stop(third);
        }
    }

    @Test
    void staleDropsAreCountedByTheLengthBinOfTheGroupsLongestSequence(@TempDir Path out) throws Exception {
        RunSettings s = settings(out, "tailguard.buffer.staleness = 0\ntailguard.controller.bin-width = 64");
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            TestProbe<TrajectoryBuffer.Batch> learner = kit.createTestProbe();
            ActorRef<TrajectoryBuffer.Command> buffer = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            buffer.tell(new TrajectoryBuffer.Resume(new GroupLedger(), false));
            buffer.tell(lease(1, 0, 70, 60)); // 130 tokens: last position 129, bin 129 / 64 = 2
            buffer.tell(lease(2, 0, 40, 24)); // 64 tokens: last position 63, bin 0
            buffer.tell(lease(3, 2, 1, 1));
            buffer.tell(new TrajectoryBuffer.NextBatch(1, 2, learner.ref()));
            TrajectoryBuffer.Batch b = learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT);
            assertArrayEquals(new long[] {3}, ids(b));
            assertArrayEquals(new long[] {1, 2}, b.staleIds());
            assertArrayEquals(new int[] {2, 0}, b.staleBins());
            buffer.tell(new TrajectoryBuffer.Trained(new long[] {3}));
            buffer.tell(lease(4, 2, 1, 1));
            leaseDone(controller);
            leaseDone(controller);
            leaseDone(controller);
            leaseDone(controller);
            JsonObject j = ledgerJson(out);
            assertEquals(2, j.get("dropped_stale").getAsLong());
            assertEquals(1, j.getAsJsonObject("dropped_stale_by_bin").get("0").getAsLong());
            assertEquals(0, j.getAsJsonObject("dropped_stale_by_bin").get("1").getAsLong());
            assertEquals(1, j.getAsJsonObject("dropped_stale_by_bin").get("2").getAsLong());
            assertEquals(s.controller().bins(), j.getAsJsonObject("dropped_stale_by_bin").size());
            assertAddsUp(j);
            kit.stop(buffer);
        }
    }

    @Test
    void aBufferStartedOnItsOwnAsksTheLearnerWhereItStands(@TempDir Path out) throws Exception {
        RunSettings s = settings(out, "");
        try (NodeMetrics metrics = new NodeMetrics()) {
            TestProbe<Controller.Command> controller = kit.createTestProbe();
            TestProbe<Learner.Command> learnerActor = kit.createTestProbe();
            TestProbe<org.apache.pekko.actor.typed.receptionist.Receptionist.Registered> registered = kit.createTestProbe();
            kit.system().receptionist().tell(org.apache.pekko.actor.typed.receptionist.Receptionist.register(Learner.KEY,
                    learnerActor.ref(), registered.ref()));
            registered.expectMessageClass(org.apache.pekko.actor.typed.receptionist.Receptionist.Registered.class);
            ActorRef<TrajectoryBuffer.Command> buffer = kit.spawn(TrajectoryBuffer.create(s, controller.ref(), metrics));
            Learner.BufferStarted asked = learnerActor.expectMessageClass(Learner.BufferStarted.class, WAIT);
            assertEquals(buffer, asked.buffer());
            // the learner's current ledger: it has trained group 1 since its checkpoint, whose file stays for a learner restart
            buffer.tell(lease(1, 0));
            buffer.tell(lease(2, 0));
            leaseDone(controller);
            leaseDone(controller);
            GroupLedger current = new GroupLedger();
            current.train(1);
            buffer.tell(new TrajectoryBuffer.Resume(current, true));
            TestProbe<TrajectoryBuffer.Batch> learner = kit.createTestProbe();
            buffer.tell(new TrajectoryBuffer.NextBatch(1, 0, learner.ref()));
            assertArrayEquals(new long[] {2}, ids(learner.expectMessageClass(TrajectoryBuffer.Batch.class, WAIT)));
            assertTrue(new GroupJournal(out.resolve("store/journal")).contains(1));
            kit.stop(buffer);
        }
    }

    @Test
    void aGroupsLengthBinIsThePositionBinOfItsLongestSequencesLastToken() {
        TrajectoryBuffer.GroupResult g = new TrajectoryBuffer.GroupResult(1, "p", "w", new TrajectoryBuffer.Sample[] {
                new TrajectoryBuffer.Sample(new int[60], new int[4], new float[4], 0, "x"),
                new TrajectoryBuffer.Sample(new int[60], new int[5], new float[5], 0, "x")});
        assertEquals(1, TrajectoryBuffer.lengthBin(g, 64, 8)); // 65 tokens: position 64 opens bin 1
        assertEquals(0, TrajectoryBuffer.lengthBin(g, 128, 8));
        assertEquals(2, TrajectoryBuffer.lengthBin(g, 16, 3)); // position 64 would be bin 4; the last bin takes it
    }
}
