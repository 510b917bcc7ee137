package io.tailguard.actors.runtime;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonParseException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the learner's weights have consumed: the ids of the groups it trained on and of those the
 * staleness bound dropped (with the count of the dropped ones per length bin,
 * {@link TrajectoryBuffer#lengthBin}). It is part of the learner checkpoint ({@value #FILE}, written in
 * the same atomic step as the weights), so after any restart the learner and the buffer agree on which
 * journaled groups are still to be trained: exactly those in neither set. Mutable; owned by one actor.
 */
final class GroupLedger {
    /** Its file in the learner checkpoint directory. */
    static final String FILE = "groups.json";

    private final GroupIds trained;
    private final GroupIds droppedStale;
    private final TreeMap<Integer, Long> droppedStaleByBin;

    GroupLedger() {
        this(new GroupIds(), new GroupIds(), new TreeMap<>());
    }

    private GroupLedger(GroupIds trained, GroupIds droppedStale, TreeMap<Integer, Long> droppedStaleByBin) {
        this.trained = trained;
        this.droppedStale = droppedStale;
        this.droppedStaleByBin = droppedStaleByBin;
    }

    GroupLedger copy() {
        return new GroupLedger(trained.copy(), droppedStale.copy(), new TreeMap<>(droppedStaleByBin));
    }

    /** Records a trained group; false (nothing changes) when it was trained or dropped already. */
    boolean train(long group) {
        return !droppedStale.contains(group) && trained.add(group);
    }

    /** Records a group the staleness bound dropped, in its length bin; false when it was trained or dropped already. */
    boolean dropStale(long group, int bin) {
        if (trained.contains(group) || !droppedStale.add(group)) {
            return false;
        }
        droppedStaleByBin.merge(bin, 1L, Long::sum);
        return true;
    }

    /** Whether the group was trained or dropped: it is never handed to the learner again. */
    boolean consumed(long group) {
        return trained.contains(group) || droppedStale.contains(group);
    }

    long trainedCount() {
        return trained.size();
    }

    long droppedStaleCount() {
        return droppedStale.size();
    }

    GroupIds trained() {
        return trained.copy();
    }

    GroupIds droppedStale() {
        return droppedStale.copy();
    }

    /** Dropped groups per length bin (bins with none are absent). */
    Map<Integer, Long> droppedStaleByBin() {
        return java.util.Collections.unmodifiableMap(new TreeMap<>(droppedStaleByBin));
    }

    private record Json(long[][] trained, long[][] droppedStale, Map<String, Long> droppedStaleByBin) {}

    private static final Gson GSON = new GsonBuilder().create();

    String toJson() {
        Map<String, Long> bins = new TreeMap<>();
        droppedStaleByBin.forEach((b, n) -> bins.put(Integer.toString(b), n));
        return GSON.toJson(new Json(trained.ranges(), droppedStale.ranges(), bins));
    }

    byte[] toBytes() {
        return toJson().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * The ledger in a learner checkpoint directory; an empty one when the checkpoint has none (written
     * before the ledger existed: nothing it trained is known, and no journal existed either).
     */
    static GroupLedger read(Path checkpointDir) {
        Path f = checkpointDir.resolve(FILE);
        if (!Files.isRegularFile(f)) {
            return new GroupLedger();
        }
        try {
            Json j = GSON.fromJson(Files.readString(f), Json.class);
            if (j == null) {
                throw new IllegalArgumentException("empty");
            }
            TreeMap<Integer, Long> bins = new TreeMap<>();
            if (j.droppedStaleByBin() != null) {
                j.droppedStaleByBin().forEach((b, n) -> bins.put(Integer.parseInt(b), n));
            }
            return new GroupLedger(GroupIds.ofRanges(j.trained()), GroupIds.ofRanges(j.droppedStale()), bins);
        } catch (IOException | JsonParseException | IllegalArgumentException e) {
            throw new IllegalStateException(f + ": unreadable learner group ledger (" + e.getMessage() + ")", e);
        }
    }
}
