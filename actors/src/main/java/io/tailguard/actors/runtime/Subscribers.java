package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Who the controller tells what: the run observers (every window) and the buffers and learners that
 * follow the live settings (when they appear, when they ask after a restart, and after every change).
 * Fed by receptionist listings; a subscriber that stops is forgotten.
 */
final class Subscribers {
    private final List<ActorRef<RunObserver.Event>> observers = new ArrayList<>();
    private final Set<ActorRef<LiveSettings>> live = new LinkedHashSet<>();

    /** The keys whose listings feed this. */
    static final List<org.apache.pekko.actor.typed.receptionist.ServiceKey<?>> KEYS =
            List.of(RunObserver.KEY, TrajectoryBuffer.KEY, Learner.KEY);

    /**
     * A listing: the observers are replaced by it; each buffer or learner in it is subscribed to the
     * live settings and sent the current ones ({@code watch} is called for each new one).
     */
    void listed(Receptionist.Listing listing, LiveSettings current, Consumer<ActorRef<LiveSettings>> watch) {
        if (listing.isForKey(TrajectoryBuffer.KEY)) {
            listing.getServiceInstances(TrajectoryBuffer.KEY).forEach(b -> subscribe(b.narrow(), current, watch));
        } else if (listing.isForKey(Learner.KEY)) {
            listing.getServiceInstances(Learner.KEY).forEach(l -> subscribe(l.narrow(), current, watch));
        } else {
            observers.clear();
            observers.addAll(listing.getServiceInstances(RunObserver.KEY));
        }
    }

    /** Subscribes {@code r} to the live settings (watching it when new) and sends it the current ones. */
    void subscribe(ActorRef<LiveSettings> r, LiveSettings current, Consumer<ActorRef<LiveSettings>> watch) {
        if (live.add(r)) {
            watch.accept(r);
        }
        r.tell(current);
    }

    /** A subscriber stopped. */
    void stopped(ActorRef<?> r) {
        live.remove(r);
    }

    void settings(LiveSettings s) {
        live.forEach(r -> r.tell(s));
    }

    void window(RunObserver.Window w) {
        observers.forEach(o -> o.tell(w));
    }

    /** Any other event for the run observers (a lease's rollout time). */
    void observe(RunObserver.Event e) {
        observers.forEach(o -> o.tell(e));
    }
}
