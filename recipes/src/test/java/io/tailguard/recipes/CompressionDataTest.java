package io.tailguard.recipes;

import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The sequences a compression method calibrates on and is measured with. */
class CompressionDataTest {
    private final CharTokenizer tok = CharTokenizer.standard();
    private final Task task = Tasks.builtin("kv-recall", 64);

    @Test
    void aSequenceIsThePromptFollowedByItsWorkedSolution() {
        Prompt p = task.prompt(7, 2);
        int[] prompt = TaskFormat.promptIds(tok, task, p);
        int[] solution = TaskFormat.completionIds(tok, task.solution(p).orElseThrow());
        int[] seq = CompressionData.sequences(task, tok, 7, 3).get(2);
        assertEquals(prompt.length + solution.length, seq.length);
        assertArrayEquals(prompt, java.util.Arrays.copyOf(seq, prompt.length));
        assertArrayEquals(solution, java.util.Arrays.copyOfRange(seq, prompt.length, seq.length));
    }

    @Test
    void calibrationAndHeldOutComeFromDifferentStreams() {
        CompressionData d = new CompressionData(task, 3, 2, 0, 7);
        List<int[]> calib = d.calibration(tok);
        List<int[]> held = d.heldOut(tok);
        assertEquals(3, calib.size());
        assertEquals(2, held.size());
        // calibration: (seed, i); held-out: (seed + 1000003, i)
        assertArrayEquals(TaskFormat.solvedIds(tok, task, task.prompt(7, 1)), calib.get(1));
        assertArrayEquals(TaskFormat.solvedIds(tok, task, task.prompt(1_000_010, 1)), held.get(1));
        assertFalse(java.util.Arrays.equals(calib.get(0), held.get(0)));
    }

    @Test
    void aStreamOfPromptsIsReadFromAnIndex() {
        List<int[]> s = CompressionData.solved(tok, task, i -> task.prompt(5, i), 10, 2);
        assertArrayEquals(TaskFormat.solvedIds(tok, task, task.prompt(5, 10)), s.get(0));
        assertArrayEquals(TaskFormat.solvedIds(tok, task, task.prompt(5, 11)), s.get(1));
    }

    @Test
    void badCountsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new CompressionData(task, 1, 0, 0, 7));
        assertThrows(IllegalArgumentException.class, () -> new CompressionData(task, -1, 1, 0, 7));
        assertThrows(IllegalArgumentException.class, () -> new CompressionData(task, 1, 1, -1, 7));
    }
}
