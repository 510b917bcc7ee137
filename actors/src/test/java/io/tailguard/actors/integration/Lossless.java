package io.tailguard.actors.integration;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lossless-training check the cluster tests end with, from the run's files: the learner node's
 * store/journal/ledger.json (the run's group counts and ids), the controller's state.json (which groups
 * it has seen acknowledged) and the final learner checkpoint's groups.json.
 */
final class Lossless {
    private Lossless() {
    }

    /**
     * Waits (up to {@code seconds}) until the ledger counts {@code trained} trained groups, then
     * checks: completed = trained + dropped stale + buffered, none in the learner's step; trained is
     * exactly {@code trained} distinct group ids (none trained twice), as the final learner checkpoint
     * holds them; the trained, dropped and buffered ids are disjoint; and every group whose lease the
     * controller saw acknowledged is among them (none lost).
     */
    static void assertLossless(Path run, int trained, int seconds) throws Exception {
        Path ledgerFile = run.resolve("store/journal/ledger.json");
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        // the last step's groups reach the ledger just before the final checkpoint is written
        while (System.nanoTime() < deadline && (count(ledgerFile, "trained") < trained
                || expandedSize(run.resolve("learner/groups.json")) < trained)) {
            Thread.sleep(500);
        }
        assertTrue(Files.isRegularFile(ledgerFile), ledgerFile + " was never written");
        // the controller's acknowledged groups first: the ledger only grows in what it accounts for
        JsonObject state = read(run.resolve("controller/state.json"));
        JsonObject l = read(ledgerFile);
        String shown = l.toString();
        assertEquals(trained, l.get("trained").getAsLong(), shown);
        assertEquals(0, l.get("in_training").getAsLong(), shown);
        assertEquals(l.get("completed").getAsLong(), l.get("trained").getAsLong() + l.get("dropped_stale").getAsLong()
                + l.get("buffered").getAsLong(), "completed = trained + dropped stale + buffered: " + shown);
        long byBin = 0;
        for (var e : l.getAsJsonObject("dropped_stale_by_bin").entrySet()) {
            byBin += e.getValue().getAsLong();
        }
        assertEquals(l.get("dropped_stale").getAsLong(), byBin, shown);

        Set<Long> t = expand(l.getAsJsonArray("trained_ids"));
        Set<Long> s = expand(l.getAsJsonArray("dropped_stale_ids"));
        Set<Long> b = new TreeSet<>();
        l.getAsJsonArray("buffered_ids").forEach(x -> b.add(x.getAsLong()));
        assertEquals(trained, t.size(), "no group trained twice: " + shown);
        assertEquals(l.get("dropped_stale").getAsLong(), s.size(), shown);
        assertEquals(l.get("buffered").getAsLong(), b.size(), shown);
        Set<Long> all = new HashSet<>(t);
        all.addAll(s);
        all.addAll(b);
        assertEquals(t.size() + s.size() + b.size(), all.size(), "trained, dropped and buffered overlap: " + shown);

        JsonObject ckpt = read(run.resolve("learner/groups.json"));
        assertEquals(t, expand(ckpt.getAsJsonArray("trained")), "the final learner checkpoint's trained groups");

        long next = state.get("nextGroup").getAsLong();
        Set<Long> open = new HashSet<>();
        state.getAsJsonArray("openGroups").forEach(x -> open.add(x.getAsLong()));
        Set<Long> lost = new TreeSet<>();
        for (long g = 0; g < next; g++) {
            if (!open.contains(g) && !all.contains(g)) {
                lost.add(g);
            }
        }
        assertTrue(lost.isEmpty(), "acknowledged but neither trained, dropped nor buffered: " + lost + "\n" + shown + "\n" + state);
    }

    /** A count in a JSON file, -1 while it is not there (a file replaced by a rename is always whole). */
    private static long count(Path f, String key) {
        try {
            return read(f).get(key).getAsLong();
        } catch (Exception notYet) {
            return -1;
        }
    }

    /** How many trained ids a checkpoint's groups.json holds, -1 while there is none (between the renames of a checkpoint write). */
    private static long expandedSize(Path f) {
        try {
            return expand(read(f).getAsJsonArray("trained")).size();
        } catch (Exception notYet) {
            return -1;
        }
    }

    private static JsonObject read(Path f) throws Exception {
        return JsonParser.parseString(Files.readString(f)).getAsJsonObject();
    }

    private static Set<Long> expand(JsonArray ranges) {
        Set<Long> ids = new TreeSet<>();
        for (JsonElement r : ranges) {
            for (long g = r.getAsJsonArray().get(0).getAsLong(); g <= r.getAsJsonArray().get(1).getAsLong(); g++) {
                ids.add(g);
            }
        }
        return ids;
    }
}
