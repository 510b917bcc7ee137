package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The learner's ledger of consumed groups, and the id ranges it keeps them in. */
class GroupLedgerTest {
    @Test
    void idsMergeIntoRanges() {
        GroupIds ids = new GroupIds();
        for (long g : new long[] {5, 3, 4, 9, 7, 8, 1}) {
            assertTrue(ids.add(g));
        }
        assertFalse(ids.add(4));
        assertEquals("[1, 3-5, 7-9]", ids.toString());
        assertEquals(7, ids.size());
        assertTrue(ids.contains(8));
        assertFalse(ids.contains(6));
        assertFalse(ids.contains(0));
        GroupIds back = GroupIds.ofRanges(ids.ranges());
        assertEquals("[1, 3-5, 7-9]", back.toString());
        assertEquals(7, back.size());
    }

    @Test
    void aGroupIsConsumedOnceAndTheLedgerReadsBackFromItsFile(@TempDir Path dir) throws Exception {
        GroupLedger l = new GroupLedger();
        assertTrue(l.train(0));
        assertTrue(l.train(1));
        assertTrue(l.dropStale(2, 3));
        assertTrue(l.dropStale(4, 0));
        assertFalse(l.train(2), "a dropped group is not trained");
        assertFalse(l.train(1), "nor a trained one twice");
        assertFalse(l.dropStale(0, 1));
        assertTrue(l.consumed(4));
        assertFalse(l.consumed(3));
        Files.write(dir.resolve(GroupLedger.FILE), l.toBytes());
        GroupLedger back = GroupLedger.read(dir);
        assertEquals(2, back.trainedCount());
        assertEquals(2, back.droppedStaleCount());
        assertEquals(Map.of(0, 1L, 3, 1L), back.droppedStaleByBin());
        assertEquals("[0-1]", back.trained().toString());
        assertEquals("[2, 4]", back.droppedStale().toString());
        assertEquals(0, GroupLedger.read(dir.resolve("none")).trainedCount(), "a checkpoint without a ledger: nothing consumed");
    }
}
