package io.tailguard.rollout.sparse;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;

/**
 * α tails per (position bin, budget) over the last few reporting windows: reports go into the open
 * window, {@link #roll} closes it, and the closed windows are kept newest last. The
 * {@link BudgetController} keeps one for the schedule's tails and one for the shadow replays (one
 * budget controller per option of the {@link ApproximationBudget}).
 */
final class WindowedTails {
    private final Map<Long, Deque<TailStats>> closed = new HashMap<>();
    private final Map<Long, TailStats> open = new HashMap<>();
    private int binWidth;

    WindowedTails(int binWidth) {
        this.binWidth = binWidth;
    }

    /** Adds bin {@code bin} of a report (other bins of it are not taken) at {@code budget} to the open window. */
    void add(int bin, int budget, TailStats report) {
        open.computeIfAbsent(key(bin, budget), k -> new TailStats(binWidth)).merge(report.onlyBin(bin));
    }

    /** Closes the open window: every (bin, budget) gets one window, empty if nothing came; at most {@code keep} are kept. */
    void roll(int keep) {
        for (Map.Entry<Long, Deque<TailStats>> e : closed.entrySet()) {
            if (!open.containsKey(e.getKey())) {
                e.getValue().addLast(new TailStats(binWidth));
            }
        }
        for (Map.Entry<Long, TailStats> e : open.entrySet()) {
            closed.computeIfAbsent(e.getKey(), k -> new ArrayDeque<>()).addLast(e.getValue());
        }
        open.clear();
        for (Deque<TailStats> d : closed.values()) {
            while (d.size() > keep) {
                d.removeFirst();
            }
        }
    }

    /** The closed windows at (bin, budget) merged into one. */
    TailStats merged(int bin, int budget) {
        TailStats out = new TailStats(binWidth);
        Deque<TailStats> d = closed.get(key(bin, budget));
        if (d != null) {
            for (TailStats t : d) {
                out.merge(t);
            }
        }
        return out;
    }

    /** The newest closed window at (bin, budget), or null when there is none. */
    TailStats last(int bin, int budget) {
        Deque<TailStats> d = closed.get(key(bin, budget));
        return d == null || d.isEmpty() ? null : d.peekLast();
    }

    /** Whether any closed window at (bin, budget) holds tokens of the bin. */
    boolean any(int bin, int budget) {
        Deque<TailStats> d = closed.get(key(bin, budget));
        if (d != null) {
            for (TailStats t : d) {
                if (t.count(bin) > 0) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Forgets everything (bins no longer line up, or the tails are of something else now). */
    void clear(int newBinWidth) {
        closed.clear();
        open.clear();
        binWidth = newBinWidth;
    }

    int binWidth() {
        return binWidth;
    }

    private static long key(int bin, int budget) {
        return ((long) bin << 32) | (budget & 0xffffffffL);
    }
}
