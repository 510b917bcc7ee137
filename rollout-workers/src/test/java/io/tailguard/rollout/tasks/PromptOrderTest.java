package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class PromptOrderTest {
    static Path sixRecords(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            lines.add("{\"id\":\"r" + i + "\",\"problem\":\"" + i + "+" + i + "=\",\"answer\":\"" + (2 * i) + "\"}");
        }
        Path f = dir.resolve("math.jsonl");
        Files.write(f, lines);
        return f;
    }

    @Test
    void aGeneratedTaskIsItsOwnStream() {
        Task t = Tasks.builtin("kv-recall", 64);
        PromptOrder o = PromptOrder.of(t, 7);
        assertEquals(t.prompt(7, 12), o.prompt(12));
        assertEquals(12, o.index(12));
    }

    @Test
    void eachEpochOfADatasetVisitsEveryRecordOnceInTheSameOrder(@TempDir Path dir) throws IOException {
        DatasetTask t = Tasks.fromDataset("math", sixRecords(dir));
        PromptOrder o = PromptOrder.of(t, 7);
        TreeSet<Long> epoch = new TreeSet<>();
        for (long g = 0; g < 6; g++) {
            epoch.add(o.index(g));
            assertEquals(o.index(g), o.index(g + 6), "epochs wrap");
            assertEquals(o.index(g), o.index(g + 12));
            assertEquals(t.prompts().get((int) o.index(g)), o.prompt(g));
        }
        assertEquals(new TreeSet<>(List.of(0L, 1L, 2L, 3L, 4L, 5L)), epoch);
        assertEquals(o.index(3), PromptOrder.of(t, 7).index(3), "a function of the seed");
        assertThrows(IllegalArgumentException.class, () -> o.index(-1));
    }

    /** π by hand: Fisher–Yates from the last position down, j = nextInt(i + 1) of SplittableRandom(seed). */
    @Test
    void thePermutationIsFisherYatesOverTheSeed() {
        SplittableRandom r = new SplittableRandom(42);
        int[] p = {0, 1, 2, 3, 4};
        for (int i = 4; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int x = p[i];
            p[i] = p[j];
            p[j] = x;
        }
        assertEquals(java.util.Arrays.toString(p), java.util.Arrays.toString(PromptOrder.permutation(5, 42)));
        assertNotEquals(java.util.Arrays.toString(PromptOrder.permutation(50, 1)),
                java.util.Arrays.toString(PromptOrder.permutation(50, 2)));
    }
}
