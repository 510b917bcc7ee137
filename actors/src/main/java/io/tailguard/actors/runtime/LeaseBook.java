package io.tailguard.actors.runtime;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The controller's leases over the prompt stream: the prompt cursor (the next group id never issued),
 * the open leases with their deadlines, the groups to issue again first (from timed-out leases, or
 * left open by a previous controller), and the workers waiting for a lease while leasing pauses. A
 * lease not done by its deadline goes back to the front of the queue, its groups in their order; a
 * done arriving after that is late and changes nothing (the buffer trains a group at most once, so
 * the duplicate is harmless). Times are System.nanoTime() values the caller passes.
 *
 * @param <W> a waiting worker's request
 */
final class LeaseBook<W> {
    /** An open lease: its id, the worker, its prompt groups, and when it times out. */
    record Lease(long id, String worker, long[] groups, long deadlineNanos) {}

    private final int groupsPerLease;
    private final long timeoutNanos;
    private final Map<Long, Lease> open = new LinkedHashMap<>();
    private final Deque<Long> reissue = new ArrayDeque<>();
    private final Deque<Waiting<W>> waiting = new ArrayDeque<>();
    private long nextGroup;
    private long nextLease = 1;

    private record Waiting<W>(String worker, W request) {}

    /** A fresh stream (nextGroup 0, nothing open), or a previous controller's: its cursor and its undelivered groups, issued first. */
    LeaseBook(int groupsPerLease, long timeoutNanos, long nextGroup, long[] undelivered) {
        if (groupsPerLease < 1) {
            throw new IllegalArgumentException("groupsPerLease: must be >= 1, got " + groupsPerLease);
        }
        this.groupsPerLease = groupsPerLease;
        this.timeoutNanos = timeoutNanos;
        this.nextGroup = nextGroup;
        for (long g : undelivered) {
            reissue.addLast(g);
        }
    }

    /** A new lease for the worker: groups to issue again first, then new ones from the cursor. */
    Lease issue(String worker, long nowNanos) {
        long[] groups = new long[groupsPerLease];
        for (int i = 0; i < groupsPerLease; i++) {
            groups[i] = reissue.isEmpty() ? nextGroup++ : reissue.removeFirst();
        }
        Lease l = new Lease(nextLease++, worker, groups, nowNanos + timeoutNanos);
        open.put(l.id(), l);
        return l;
    }

    /** A lease is done: true when it was open, false when it is late (re-issued already) or unknown. */
    boolean done(long lease) {
        return open.remove(lease) != null;
    }

    /** Closes every lease past its deadline; their groups go to the front of the queue, in lease and group order. */
    List<Lease> expire(long nowNanos) {
        List<Lease> expired = new ArrayList<>();
        for (Lease l : open.values()) {
            if (nowNanos - l.deadlineNanos() > 0) {
                expired.add(l);
            }
        }
        for (int i = expired.size() - 1; i >= 0; i--) {
            Lease l = expired.get(i);
            open.remove(l.id());
            for (int g = l.groups().length - 1; g >= 0; g--) {
                reissue.addFirst(l.groups()[g]);
            }
        }
        return expired;
    }

    /** A worker waits for a lease (a worker that asks again waits once, at the back). */
    void park(String worker, W request) {
        waiting.removeIf(w -> w.worker().equals(worker));
        waiting.addLast(new Waiting<>(worker, request));
    }

    /** The waiting requests, longest-waiting first, each taken while {@code lease} accepts it (stops at the first refusal). */
    void drain(Predicate<W> lease) {
        while (!waiting.isEmpty() && lease.test(waiting.peekFirst().request())) {
            waiting.removeFirst();
        }
    }

    int waiting() {
        return waiting.size();
    }

    int openLeases() {
        return open.size();
    }

    /** The groups of the open leases: issued and not yet delivered. */
    int openGroups() {
        int n = 0;
        for (Lease l : open.values()) {
            n += l.groups().length;
        }
        return n;
    }

    /** The prompt cursor: the next group id never issued (also the number of groups issued). */
    long nextGroup() {
        return nextGroup;
    }

    /** Groups waiting to be issued again. */
    int toReissue() {
        return reissue.size();
    }

    /** Every group issued but not delivered: the re-issue queue, then the open leases' groups. */
    long[] undelivered() {
        List<Long> out = new ArrayList<>(reissue);
        for (Lease l : open.values()) {
            for (long g : l.groups()) {
                out.add(g);
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }
}
