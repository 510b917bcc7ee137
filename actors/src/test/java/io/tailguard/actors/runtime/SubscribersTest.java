package io.tailguard.actors.runtime;

import org.apache.pekko.actor.testkit.typed.javadsl.TestInbox;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Who the controller tells what, fed by receptionist listings, without an actor system (test inboxes). */
class SubscribersTest {
    private static final LiveSettings V1 = new LiveSettings(1, 2, 2e-4, false);
    private static final LiveSettings V2 = new LiveSettings(2, 1, 5e-5, true);

    @Test
    void buffersAndLearnersGetTheLiveSettingsWhenListedAndAfterEveryChangeUntilTheyStop() {
        Subscribers subs = new Subscribers();
        List<ActorRef<LiveSettings>> watched = new ArrayList<>();
        TestInbox<TrajectoryBuffer.Command> buffer = TestInbox.create();
        TestInbox<Learner.Command> learner = TestInbox.create();

        subs.listed(Receptionist.listing(TrajectoryBuffer.KEY, Set.of(buffer.getRef())), V1, watched::add);
        subs.listed(Receptionist.listing(Learner.KEY, Set.of(learner.getRef())), V1, watched::add);
        buffer.expectMessage(V1);
        learner.expectMessage(V1);
        assertEquals(2, watched.size(), "each new one is watched");

        // listed again (another listing of the same key): sent the current settings again, not watched twice
        subs.listed(Receptionist.listing(TrajectoryBuffer.KEY, Set.of(buffer.getRef())), V1, watched::add);
        buffer.expectMessage(V1);
        assertEquals(2, watched.size());

        subs.settings(V2);
        buffer.expectMessage(V2);
        learner.expectMessage(V2);

        subs.stopped(watched.get(1)); // the learner stopped: forgotten
        subs.settings(V1);
        buffer.expectMessage(V1);
        assertFalse(learner.hasMessages(), "a stopped subscriber gets nothing");
    }

    @Test
    void aLearnerThatAsksIsSubscribedOnceAndSentTheCurrentSettingsEveryTime() {
        Subscribers subs = new Subscribers();
        List<ActorRef<LiveSettings>> watched = new ArrayList<>();
        TestInbox<LiveSettings> restarted = TestInbox.create();
        subs.subscribe(restarted.getRef(), V1, watched::add);
        subs.subscribe(restarted.getRef(), V2, watched::add);
        restarted.expectMessage(V1);
        restarted.expectMessage(V2);
        assertEquals(List.of(restarted.getRef()), watched);
        subs.settings(V2);
        restarted.expectMessage(V2);
        assertFalse(restarted.hasMessages());
    }

    @Test
    void observersAreReplacedByEachListingAndGetEveryWindow() {
        Subscribers subs = new Subscribers();
        TestInbox<RunObserver.Event> first = TestInbox.create();
        TestInbox<RunObserver.Event> second = TestInbox.create();
        RunObserver.Window w1 = window(1);
        RunObserver.Window w2 = window(2);

        subs.listed(Receptionist.listing(RunObserver.KEY, Set.of(first.getRef(), second.getRef())), V1, r -> {
            throw new AssertionError("observers are not watched");
        });
        assertFalse(first.hasMessages(), "an observer gets windows, not settings");
        subs.window(w1);
        first.expectMessage(w1);
        second.expectMessage(w1);

        subs.listed(Receptionist.listing(RunObserver.KEY, Set.of(second.getRef())), V1, r -> {});
        subs.window(w2);
        second.expectMessage(w2);
        assertFalse(first.hasMessages(), "an observer no longer listed gets nothing");

        subs.settings(V2);
        assertFalse(second.hasMessages(), "observers do not follow the live settings");
    }

    private static RunObserver.Window window(long version) {
        return new RunObserver.Window(version * 1000, version, new int[] {64}, new double[] {0.9}, new long[] {10}, 0.86, 1.2,
                new String[0], null);
    }
}
