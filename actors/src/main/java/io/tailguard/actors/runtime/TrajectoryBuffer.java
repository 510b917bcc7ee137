package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Complete groups between the workers and the learner. A group id is accepted once (a re-issued
 * lease's late duplicate is dropped and counted), and a group more than the staleness bound behind the
 * learner's version is dropped when a batch is cut. Groups whose rewards are all equal stay in the
 * batch: the learner's dynamic-sampling filter drops and counts them, and a run whose policy never
 * succeeds still advances instead of waiting forever for an informative group. The learner pulls batches; the controller
 * hears the depth and stops leasing while the buffer is full. The staleness bound is live: the
 * controller's {@link LiveSettings} set it, and the next batch cut uses it.
 */
public final class TrajectoryBuffer extends AbstractBehavior<TrajectoryBuffer.Command> {
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "tailguard-trajectory-buffer");

    public sealed interface Command permits Trajectories, NextBatch, LiveSettings {}

    public record Sample(int[] prompt, int[] output, float[] behaviourLogprobs, float[] oldLogprobs, double reward,
                         String reason) implements Wire {}

    /** One prompt's G samples, and the worker that rolled them out (provenance, for metrics and tests). */
    public record GroupResult(long groupId, String promptId, String worker, Sample[] samples) implements Wire {}

    /** One lease's groups, rolled out with policy version policyVersion under schedule at tokensPerSecond. */
    public record Trajectories(long lease, String worker, long policyVersion, GroupResult[] groups, double tokensPerSecond,
                               ScheduleSpec schedule) implements Command, Wire {}

    /** The learner (at version learnerVersion) wants `groups` groups. */
    public record NextBatch(int groups, long learnerVersion, ActorRef<Batch> replyTo) implements Command, Wire {}

    /** schedules[i]: the schedule group i was rolled out under (DistillSparse's mask). */
    public record Batch(GroupResult[] groups, long[] policyVersions, int droppedStale, int droppedDuplicate,
                        double rolloutTokensPerSecond, ScheduleSpec[] schedules) implements Wire {}

    private record Entry(GroupResult group, long version, ScheduleSpec schedule) {}

    public static Behavior<Command> create(RunSettings s, ActorRef<Controller.Command> controller, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> new TrajectoryBuffer(ctx, s, controller, metrics));
    }

    private final RunSettings s;
    private final ActorRef<Controller.Command> controller;
    private final NodeMetrics metrics;
    private final Deque<Entry> ready = new ArrayDeque<>();
    private final Set<Long> seen = new HashSet<>();
    private NextBatch waiting;
    private int stale;
    private int duplicate;
    private double tokensPerSecond;
    private int staleness;

    private TrajectoryBuffer(ActorContext<Command> ctx, RunSettings s, ActorRef<Controller.Command> controller, NodeMetrics metrics) {
        super(ctx);
        this.s = s;
        this.controller = controller;
        this.metrics = metrics;
        this.staleness = s.buffer().staleness();
        metrics.stalenessBound.set(staleness);
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        controller.tell(new Controller.WantSettings(ctx.getSelf().narrow())); // the live bound, if tuned before a restart
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Trajectories.class, this::onTrajectories)
                .onMessage(NextBatch.class, this::onNextBatch)
                .onMessage(LiveSettings.class, this::onSettings)
                .build();
    }

    private Behavior<Command> onTrajectories(Trajectories t) {
        tokensPerSecond = t.tokensPerSecond();
        for (GroupResult g : t.groups()) {
            if (!seen.add(g.groupId())) {
                duplicate++;
                metrics.groupsDropped.labelValues("duplicate").inc();
                continue;
            }
            ready.addLast(new Entry(g, t.policyVersion(), t.schedule()));
        }
        serve();
        return this;
    }

    private Behavior<Command> onSettings(LiveSettings l) {
        if (l.staleness() != staleness) {
            getContext().getLog().info("buffer: staleness bound {} -> {} (settings v{})", staleness, l.staleness(), l.version());
            staleness = l.staleness();
            metrics.stalenessBound.set(staleness);
            serve();
        }
        return this;
    }

    private Behavior<Command> onNextBatch(NextBatch n) {
        waiting = n;
        serve();
        return this;
    }

    private void serve() {
        if (waiting != null) {
            while (!ready.isEmpty() && waiting.learnerVersion() - ready.peekFirst().version() > staleness) {
                ready.removeFirst();
                stale++;
                metrics.groupsDropped.labelValues("stale").inc();
            }
            if (ready.size() >= waiting.groups()) {
                List<GroupResult> gs = new ArrayList<>();
                long[] versions = new long[waiting.groups()];
                ScheduleSpec[] schedules = new ScheduleSpec[waiting.groups()];
                for (int i = 0; i < waiting.groups(); i++) {
                    Entry e = ready.removeFirst();
                    gs.add(e.group());
                    versions[i] = e.version();
                    schedules[i] = e.schedule();
                }
                waiting.replyTo().tell(new Batch(gs.toArray(GroupResult[]::new), versions, stale, duplicate, tokensPerSecond, schedules));
                stale = 0;
                duplicate = 0;
                waiting = null;
            }
        }
        metrics.bufferGroups.set(ready.size());
        controller.tell(new Controller.BufferDepth(ready.size()));
    }
}
