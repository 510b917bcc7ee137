package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The journal of completed groups: all or nothing per group across a crash, replay in completion order, trimming. */
class GroupJournalTest {
    static final ScheduleSpec SPEC = new ScheduleSpec("BINS", 4, 64, new int[] {64, 128}, new int[] {0, 3});

    static TrajectoryBuffer.GroupResult group(long id) {
        return new TrajectoryBuffer.GroupResult(id, "kv-recall/7/" + id, "worker-0@h:1", new TrajectoryBuffer.Sample[] {
                new TrajectoryBuffer.Sample(new int[] {5, 6, 7}, new int[] {8, 9}, new float[] {-0.5f, Float.NEGATIVE_INFINITY},
                        1.0, "ok"),
                new TrajectoryBuffer.Sample(new int[] {5, 6, 7}, new int[0], new float[0], 0.0, null)});
    }

    static long[] ids(List<GroupJournal.Entry> es) {
        return es.stream().mapToLong(e -> e.group().groupId()).toArray();
    }

    @Test
    void aGroupReadsBackAsItWasWritten(@TempDir Path dir) throws Exception {
        GroupJournal j = new GroupJournal(dir);
        j.append(12, 3, SPEC, List.of(group(40)));
        GroupJournal.Entry e = new GroupJournal(dir).read(g -> true, m -> { throw new AssertionError(m); }).get(0);
        assertEquals(12, e.lease());
        assertEquals(3, e.policyVersion());
        assertEquals("BINS", e.schedule().kind());
        assertEquals(4, e.schedule().version());
        assertArrayEquals(new int[] {64, 128}, e.schedule().budgets());
        assertArrayEquals(new int[] {0, 3}, e.schedule().denseLayers());
        TrajectoryBuffer.GroupResult g = e.group();
        assertEquals(40, g.groupId());
        assertEquals("kv-recall/7/40", g.promptId());
        assertEquals("worker-0@h:1", g.worker());
        assertArrayEquals(new int[] {8, 9}, g.samples()[0].output());
        assertArrayEquals(new float[] {-0.5f, Float.NEGATIVE_INFINITY}, g.samples()[0].behaviourLogprobs());
        assertEquals(1.0, g.samples()[0].reward());
        assertEquals(0, g.samples()[1].output().length);
        assertNull(g.samples()[1].reason());
    }

    @Test
    void aGroupOfTheFirstFormatReadsBackWithoutItsDenseLogProbs() throws Exception {
        // the first format, written here field by field: each sample also carried π_old after π_inf
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.DataOutputStream out = new java.io.DataOutputStream(bytes);
        out.writeInt(0x54474a31); // "TGJ1"
        out.writeLong(7);         // seq
        out.writeLong(12);        // lease
        out.writeLong(3);         // policy version
        out.writeBoolean(false);  // no schedule
        out.writeLong(40);        // group id
        for (String s : new String[] {"kv-recall/7/40", "w"}) {
            byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            out.writeInt(b.length);
            out.write(b);
        }
        out.writeInt(1);          // one sample
        for (int[] ints : new int[][] {{5, 6, 7}, {8, 9}}) {
            out.writeInt(ints.length);
            for (int v : ints) {
                out.writeInt(v);
            }
        }
        for (float[] floats : new float[][] {{-0.5f, -1.25f}, {-0.75f, -1f}}) {
            out.writeInt(floats.length);
            for (float v : floats) {
                out.writeFloat(v);
            }
        }
        out.writeDouble(1.0);
        out.writeInt(2);
        out.write("ok".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        out.flush();
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(bytes.toByteArray());
        out.writeLong(crc.getValue());
        GroupJournal.Entry e = GroupJournal.decode(bytes.toByteArray());
        assertEquals(12, e.lease());
        TrajectoryBuffer.Sample x = e.group().samples()[0];
        assertArrayEquals(new int[] {8, 9}, x.output());
        assertArrayEquals(new float[] {-0.5f, -1.25f}, x.behaviourLogprobs());
        assertEquals(1.0, x.reward());
        assertEquals("ok", x.reason());
    }

    @Test
    void aCrashBetweenTheWriteAndTheRenameLeavesNoHalfGroup(@TempDir Path dir) throws Exception {
        GroupJournal j = new GroupJournal(dir);
        j.append(1, 0, SPEC, List.of(group(1)));
        // the process dies after the group's bytes are written, before the rename that puts them in the journal
        Path tmp = j.writeTemp(new GroupJournal.Entry(99, 2, 0, SPEC, group(2)));
        assertTrue(Files.exists(tmp));

        GroupJournal reopened = new GroupJournal(dir);
        assertEquals(Set.of(1L), reopened.ids());
        assertFalse(Files.exists(tmp), "the interrupted write is cleaned up");
        assertArrayEquals(new long[] {1}, ids(reopened.read(g -> true, m -> { throw new AssertionError(m); })));
    }

    @Test
    void replayIsInCompletionOrderAcrossReopens(@TempDir Path dir) throws Exception {
        GroupJournal j = new GroupJournal(dir);
        j.append(1, 0, SPEC, List.of(group(9), group(3)));
        j.append(2, 0, SPEC, List.of(group(5)));
        GroupJournal reopened = new GroupJournal(dir);
        reopened.append(3, 1, SPEC, List.of(group(1)));
        assertArrayEquals(new long[] {9, 3, 5, 1}, ids(new GroupJournal(dir).read(g -> true, m -> { throw new AssertionError(m); })));
        assertArrayEquals(new long[] {9, 5}, ids(new GroupJournal(dir).read(g -> g != 3 && g != 1, m -> { })));
    }

    @Test
    void trimmingDeletesExactlyTheTrainedGroups(@TempDir Path dir) throws Exception {
        GroupJournal j = new GroupJournal(dir);
        j.append(1, 0, SPEC, List.of(group(1), group(2), group(3)));
        j.remove(List.of(1L, 3L, 77L));
        assertEquals(Set.of(2L), j.ids());
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count());
        }
        assertEquals(Set.of(2L), new GroupJournal(dir).ids());
    }

    @Test
    void aFileThatDoesNotReadBackIsSetAsideAndReported(@TempDir Path dir) throws Exception {
        GroupJournal j = new GroupJournal(dir);
        j.append(1, 0, SPEC, List.of(group(1), group(2)));
        Path f;
        try (var files = Files.list(dir)) {
            f = files.filter(p -> p.getFileName().toString().endsWith("-g2.group")).findFirst().orElseThrow();
        }
        byte[] b = Files.readAllBytes(f);
        b[b.length / 2] ^= 1;
        Files.write(f, b);
        List<String> reported = new java.util.ArrayList<>();
        GroupJournal reopened = new GroupJournal(dir);
        assertArrayEquals(new long[] {1}, ids(reopened.read(g -> true, reported::add)));
        assertEquals(1, reported.size());
        assertTrue(reported.get(0).contains("checksum"), reported.get(0));
        assertTrue(Files.exists(f.resolveSibling(f.getFileName() + ".unreadable")));
        assertEquals(Set.of(1L), reopened.ids());
    }
}
