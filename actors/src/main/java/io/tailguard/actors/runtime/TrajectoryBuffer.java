package io.tailguard.actors.runtime;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

import io.tailguard.model.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Complete groups between the workers and the learner, made durable before their lease is
 * acknowledged: every group a worker delivers is written to the {@link GroupJournal} in the
 * checkpoint store and forced to disk, and only then does the buffer tell the controller the lease is
 * done (a lease whose groups could not be written is not acknowledged, so it times out and is issued
 * again). The learner tells the buffer where it stands ({@link Resume}: the {@link GroupLedger} of its
 * checkpoint when it starts): the groups to train are the journaled ones in neither of the ledger's
 * sets, in completion order, so after a restart of any node every completed group that is not yet
 * trained is trained exactly once, unless the staleness bound drops it. A group id is accepted once
 * (a re-issued lease's late duplicate, or a group a restarted controller issues again, is acknowledged,
 * dropped and counted); a group more than the staleness bound behind the learner's version is
 * dropped when a batch is cut, and counted by length bin ({@link #lengthBin}). The journal is trimmed
 * when the learner's checkpoint holds groups as trained or dropped ({@link Checkpointed}).
 * Groups whose rewards are all equal stay in the batch: the learner's dynamic-sampling filter drops
 * and counts them, and a run whose policy never succeeds still advances instead of waiting forever for
 * an informative group. The learner pulls batches; the controller hears the depth and stops leasing
 * while the buffer is full. The staleness bound is live: the controller's {@link LiveSettings} set it,
 * and the next batch cut uses it. The run's trajectory counts (completed = trained + dropped stale +
 * buffered) go to the metrics and to {@value #LEDGER} in the journal's directory after every change.
 * Runs on the blocking-io dispatcher (it forces files to disk).
 */
public final class TrajectoryBuffer extends AbstractBehavior<TrajectoryBuffer.Command> {
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "tailguard-trajectory-buffer");

    /** The run's trajectory counts and group ids, beside the journal. */
    static final String LEDGER = "ledger.json";

    public sealed interface Command permits Trajectories, NextBatch, LiveSettings, Resume, Trained, Checkpointed, LearnersListed {}

    /** One trajectory: its sampler's log-prob per output token (π_inf), its reward and the verifier's reason. */
    public record Sample(int[] prompt, int[] output, float[] behaviourLogprobs, double reward, String reason) implements Wire {}

    /** One prompt's G samples, and the worker that rolled them out (provenance, for metrics and tests). */
    public record GroupResult(long groupId, String promptId, String worker, Sample[] samples) implements Wire {}

    /** One lease's groups, rolled out with policy version policyVersion under schedule at tokensPerSecond. */
    public record Trajectories(long lease, String worker, long policyVersion, GroupResult[] groups, double tokensPerSecond,
                               ScheduleSpec schedule) implements Command, Wire {}

    /** The learner (at version learnerVersion) wants `groups` groups. */
    public record NextBatch(int groups, long learnerVersion, ActorRef<Batch> replyTo) implements Command, Wire {}

    /**
     * schedules[i]: the schedule group i was rolled out under (DistillSparse's mask). staleIds and
     * staleBins: the groups the staleness bound dropped since the previous batch, and their length
     * bins (droppedStale of them), for the learner's {@link GroupLedger}.
     */
    public record Batch(GroupResult[] groups, long[] policyVersions, int droppedStale, int droppedDuplicate,
                        double rolloutTokensPerSecond, ScheduleSpec[] schedules, long[] staleIds, int[] staleBins) implements Wire {}

    /**
     * Where the learner stands: the ledger of the checkpoint it starts from (a copy the buffer may
     * keep), sent when it starts and before it asks for a batch; the groups it handed to an earlier
     * learner since then are to be trained again. answer: sent in answer to a restarted buffer's
     * {@link Learner.BufferStarted} (the learner's current ledger), taken only by a buffer that has
     * not heard from the learner yet.
     */
    record Resume(GroupLedger ledger, boolean answer) implements Command {}

    /** The learner took a step on these groups. */
    record Trained(long[] groups) implements Command {}

    /** The learner's checkpoint now holds these groups as trained or dropped: their journal files go. */
    record Checkpointed(long[] groups) implements Command {}

    /** A receptionist listing of the learners (a restarted buffer asks them where they stand). */
    record LearnersListed(Receptionist.Listing listing) implements Command {}

    public static Behavior<Command> create(RunSettings s, ActorRef<Controller.Command> controller, NodeMetrics metrics) {
        return Behaviors.setup(ctx -> new TrajectoryBuffer(ctx, s, controller, metrics));
    }

    /** The journal's directory in a run's checkpoint store. */
    static Path journalDir(RunSettings s) {
        return s.train().out().resolve("store").resolve("journal");
    }

    /**
     * A group's length bin: the controller's position bin (width binWidth, bins of them, the last
     * taking every position beyond) of its longest sample's last position (prompt plus completion
     * tokens, minus one).
     */
    static int lengthBin(GroupResult g, int binWidth, int bins) {
        int longest = 1;
        for (Sample x : g.samples()) {
            longest = Math.max(longest, x.prompt().length + x.output().length);
        }
        return Math.min(bins - 1, (longest - 1) / binWidth);
    }

    private final RunSettings s;
    private final ActorRef<Controller.Command> controller;
    private final NodeMetrics metrics;
    private final GroupJournal journal;
    private final Path ledgerFile;
    private final int binWidth;
    private final int bins;
    private final Deque<GroupJournal.Entry> ready = new ArrayDeque<>();
    /** Groups handed to the learner and not yet trained. */
    private final Set<Long> inTraining = new HashSet<>();
    /** The learner's ledger as the buffer knows it: its checkpoint's, with the steps and stale drops since. */
    private GroupLedger ledger;
    private long completed;
    private long duplicates;
    private final List<Long> staleIds = new ArrayList<>();
    private final List<Integer> staleBins = new ArrayList<>();
    private NextBatch waiting;
    private int duplicate;
    private double tokensPerSecond;
    private int staleness;

    private TrajectoryBuffer(ActorContext<Command> ctx, RunSettings s, ActorRef<Controller.Command> controller, NodeMetrics metrics)
            throws IOException {
        super(ctx);
        this.s = s;
        this.controller = controller;
        this.metrics = metrics;
        this.staleness = s.buffer().staleness();
        this.journal = new GroupJournal(journalDir(s));
        this.ledgerFile = journal.dir().resolve(LEDGER);
        this.binWidth = s.controller().binWidth();
        this.bins = s.controller().bins();
        metrics.stalenessBound.set(staleness);
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        controller.tell(new Controller.WantSettings(ctx.getSelf().narrow())); // the live bound, if tuned before a restart
        // a buffer restarted on its own asks the learner where it stands (a fresh one hears it anyway)
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(Learner.KEY,
                ctx.messageAdapter(Receptionist.Listing.class, LearnersListed::new)));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Trajectories.class, this::onTrajectories)
                .onMessage(NextBatch.class, this::onNextBatch)
                .onMessage(LiveSettings.class, this::onSettings)
                .onMessage(Resume.class, this::onResume)
                .onMessage(Trained.class, this::onTrained)
                .onMessage(Checkpointed.class, this::onCheckpointed)
                .onMessage(LearnersListed.class, this::onLearners)
                .build();
    }

    private boolean duplicate(long group) {
        return journal.contains(group) || (ledger != null && ledger.consumed(group));
    }

    private Behavior<Command> onTrajectories(Trajectories t) {
        tokensPerSecond = t.tokensPerSecond();
        List<GroupResult> fresh = new ArrayList<>();
        Set<Long> ids = new HashSet<>();
        for (GroupResult g : t.groups()) {
            if (duplicate(g.groupId()) || !ids.add(g.groupId())) {
                duplicate++;
                duplicates++;
                metrics.groupsDropped.labelValues("duplicate").inc();
                continue;
            }
            fresh.add(g);
        }
        if (!fresh.isEmpty()) {
            List<GroupJournal.Entry> written;
            try {
                written = journal.append(t.lease(), t.policyVersion(), t.schedule(), fresh);
            } catch (IOException | RuntimeException e) {
                // not acknowledged: the lease times out and its groups are issued again
                getContext().getLog().error("buffer: cannot journal lease {} from {} ({}); not acknowledged, its groups will be "
                        + "issued again", t.lease(), t.worker(), e.getMessage());
                return this;
            }
            if (ledger != null) {
                ready.addAll(written);
                completed += written.size();
            }
        }
        serve();
        // durable (or a duplicate of a group that is): the lease is done
        controller.tell(new Controller.LeaseDone(t.lease(), t.worker()));
        return this;
    }

    private Behavior<Command> onResume(Resume r) {
        if (r.answer() && ledger != null) {
            return this; // the learner's own Resume came first
        }
        ledger = r.ledger();
        inTraining.clear();
        staleIds.clear();
        staleBins.clear();
        ready.clear();
        try {
            if (!r.answer()) {
                // a checkpoint's ledger: what it holds and a crash left in the journal goes (an answer's
                // ledger may hold steps after the checkpoint, whose groups a learner restart would need)
                journal.remove(journal.ids().stream().filter(ledger::consumed).toList());
            }
            ready.addAll(journal.read(g -> !ledger.consumed(g), m -> getContext().getLog().error("buffer: journal: {}", m)));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("buffer: cannot read the journal in " + journal.dir() + ": " + e.getMessage(), e);
        }
        completed = ledger.trainedCount() + ledger.droppedStaleCount() + ready.size();
        getContext().getLog().info("buffer: {} groups to train from the journal (the learner has trained {} and dropped {} as stale)",
                ready.size(), ledger.trainedCount(), ledger.droppedStaleCount());
        serve();
        return this;
    }

    private Behavior<Command> onTrained(Trained t) {
        if (ledger != null) {
            for (long g : t.groups()) {
                inTraining.remove(g);
                ledger.train(g);
            }
            publish();
        }
        return this;
    }

    private Behavior<Command> onCheckpointed(Checkpointed c) {
        try {
            journal.remove(java.util.Arrays.stream(c.groups()).boxed().toList());
        } catch (IOException e) {
            // left for the next checkpoint's trim or the next start, which deletes what a checkpoint holds
            getContext().getLog().warn("buffer: cannot trim the journal in {}: {}", journal.dir(), e.getMessage());
        }
        publish();
        return this;
    }

    private Behavior<Command> onLearners(LearnersListed l) {
        if (ledger == null) {
            for (ActorRef<Learner.Command> learner : l.listing().getServiceInstances(Learner.KEY)) {
                if (!learner.path().address().hasLocalScope()) {
                    continue; // the learner beside this buffer is the one that trains from its journal
                }
                learner.tell(new Learner.BufferStarted(getContext().getSelf()));
            }
        }
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
        if (waiting != null && ledger != null) {
            while (!ready.isEmpty() && waiting.learnerVersion() - ready.peekFirst().policyVersion() > staleness) {
                GroupJournal.Entry e = ready.removeFirst();
                int bin = lengthBin(e.group(), binWidth, bins);
                ledger.dropStale(e.group().groupId(), bin);
                staleIds.add(e.group().groupId());
                staleBins.add(bin);
                metrics.groupsDropped.labelValues("stale").inc();
            }
            if (ready.size() >= waiting.groups()) {
                List<GroupResult> gs = new ArrayList<>();
                long[] versions = new long[waiting.groups()];
                ScheduleSpec[] schedules = new ScheduleSpec[waiting.groups()];
                for (int i = 0; i < waiting.groups(); i++) {
                    GroupJournal.Entry e = ready.removeFirst();
                    gs.add(e.group());
                    versions[i] = e.policyVersion();
                    schedules[i] = e.schedule();
                    inTraining.add(e.group().groupId());
                }
                waiting.replyTo().tell(new Batch(gs.toArray(GroupResult[]::new), versions, staleIds.size(), duplicate, tokensPerSecond,
                        schedules, staleIds.stream().mapToLong(Long::longValue).toArray(),
                        staleBins.stream().mapToInt(Integer::intValue).toArray()));
                staleIds.clear();
                staleBins.clear();
                duplicate = 0;
                waiting = null;
            }
        }
        publish();
        metrics.bufferGroups.set(ready.size());
        controller.tell(new Controller.BufferDepth(ready.size()));
    }

    /** The run's counts to the metrics and the ledger file (once the learner's ledger is known). */
    private void publish() {
        if (ledger == null) {
            return;
        }
        long[] byBin = new long[bins];
        ledger.droppedStaleByBin().forEach((b, n) -> byBin[Math.min(bins - 1, b)] += n);
        long buffered = ready.size() + inTraining.size();
        metrics.trajectoryCounts(new NodeMetrics.TrajectoryCounts(completed, ledger.trainedCount(), buffered, byBin));
        TreeSet<Long> bufferedIds = new TreeSet<>(inTraining);
        ready.forEach(e -> bufferedIds.add(e.group().groupId()));
        Map<String, Long> bySlot = new java.util.LinkedHashMap<>();
        for (int b = 0; b < bins; b++) {
            bySlot.put(Integer.toString(b), byBin[b]);
        }
        LedgerJson j = new LedgerJson(completed, ledger.trainedCount(), ledger.droppedStaleCount(), bySlot, buffered,
                inTraining.size(), duplicates, ledger.trained().ranges(), ledger.droppedStale().ranges(),
                bufferedIds.stream().mapToLong(Long::longValue).toArray());
        try {
            AtomicFiles.writeString(ledgerFile, LEDGER_GSON.toJson(j));
        } catch (IOException e) {
            getContext().getLog().warn("buffer: cannot write {}: {}", ledgerFile, e.getMessage());
        }
    }

    /**
     * {@value #LEDGER}: completed = trained + droppedStale + buffered (buffered: journaled groups not
     * yet trained or dropped, inTraining of them in the learner's current step); the ids as inclusive
     * ranges, except bufferedIds.
     */
    record LedgerJson(long completed, long trained, long droppedStale, Map<String, Long> droppedStaleByBin, long buffered,
                      long inTraining, long duplicates, long[][] trainedIds, long[][] droppedStaleIds, long[] bufferedIds) {}

    private static final com.google.gson.Gson LEDGER_GSON = new com.google.gson.GsonBuilder()
            .setFieldNamingPolicy(com.google.gson.FieldNamingPolicy.LOWER_CASE_WITH_UNDERSCORES).create();
}
