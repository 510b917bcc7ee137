package io.tailguard.actors.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A set of group ids kept as inclusive ranges. Groups are issued in id order and mostly trained in
 * that order, so the ids a run has trained are a few long runs with holes where a lease was late or a
 * group went stale: the set stays small (in memory and in the learner checkpoint) for a run of any length.
 */
final class GroupIds {
    /** start → end, inclusive, disjoint and not adjacent. */
    private final TreeMap<Long, Long> ranges = new TreeMap<>();
    private long size;

    GroupIds() {
    }

    /** The ids of {@code ranges} ({@code [start, end]} pairs, inclusive), as {@link #ranges()} gives them. */
    static GroupIds ofRanges(long[][] ranges) {
        GroupIds ids = new GroupIds();
        if (ranges != null) {
            for (long[] r : ranges) {
                if (r == null || r.length != 2 || r[1] < r[0]) {
                    throw new IllegalArgumentException("group id range: must be [start, end] with start <= end, got "
                            + java.util.Arrays.toString(r));
                }
                for (long g = r[0]; g <= r[1]; g++) {
                    ids.add(g);
                }
            }
        }
        return ids;
    }

    GroupIds copy() {
        GroupIds c = new GroupIds();
        c.ranges.putAll(ranges);
        c.size = size;
        return c;
    }

    /** Adds id; false when it was in the set already. */
    boolean add(long id) {
        if (contains(id)) {
            return false;
        }
        Map.Entry<Long, Long> below = ranges.floorEntry(id);
        Map.Entry<Long, Long> above = ranges.ceilingEntry(id);
        boolean joinsBelow = below != null && below.getValue() == id - 1;
        boolean joinsAbove = above != null && above.getKey() == id + 1;
        if (joinsBelow && joinsAbove) {
            ranges.remove(above.getKey());
            ranges.put(below.getKey(), above.getValue());
        } else if (joinsBelow) {
            ranges.put(below.getKey(), id);
        } else if (joinsAbove) {
            ranges.remove(above.getKey());
            ranges.put(id, above.getValue());
        } else {
            ranges.put(id, id);
        }
        size++;
        return true;
    }

    boolean contains(long id) {
        Map.Entry<Long, Long> below = ranges.floorEntry(id);
        return below != null && below.getValue() >= id;
    }

    /** How many ids. */
    long size() {
        return size;
    }

    /** The ids as inclusive {@code [start, end]} ranges, ascending. */
    long[][] ranges() {
        List<long[]> out = new ArrayList<>();
        ranges.forEach((a, b) -> out.add(new long[] {a, b}));
        return out.toArray(long[][]::new);
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("[");
        ranges.forEach((s, e) -> b.append(b.length() > 1 ? ", " : "").append(s.equals(e) ? s.toString() : s + "-" + e));
        return b.append(']').toString();
    }
}
