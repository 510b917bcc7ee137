package io.tailguard.rollout.tasks;

import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.model.tokenizer.ChatFormat;
import io.tailguard.model.tokenizer.ChatTemplate;
import io.tailguard.model.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.Optional;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TaskFormatTest {
    static final CharTokenizer CHAR = CharTokenizer.standard();

    /** A tokenizer without bos or eos: 'a' = 10, 'b' = 11. */
    static final Tokenizer BARE = new Tokenizer() {
        public int[] encode(String text) {
            return text.chars().map(c -> c - 'a' + 10).toArray();
        }

        public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                sb.append((char) ('a' + id - 10));
            }
            return sb.toString();
        }

        public int vocabSize() {
            return 40;
        }

        public int eosId() {
            return -1;
        }

        public int bosId() {
            return -1;
        }

        public String toJson() {
            return "{}";
        }
    };

    /** A task without a chat template. */
    private static final Task RAW = Tasks.builtin("kv-recall", 64);

    /** A hand-written template: "[role]content" lines, then "[assistant]" as the generation prompt. */
    private static final ChatTemplate TEMPLATE = ChatTemplate.of(
            "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
            "test template", java.util.Map.of());

    @Test
    void aChatTaskRendersThePromptAsAUserTurnWithoutBos() {
        Task chat = new ChatTask(RAW, new ChatFormat(TEMPLATE, "Be brief.", null));
        Prompt p = new Prompt("x", "ab", null);
        assertArrayEquals(CHAR.encode("[system]Be brief.\n[user]ab\n[assistant]"), TaskFormat.promptIds(CHAR, chat, p));
        // the template writes "\n" after a turn: not one token of this tokenizer's, so only eos stops
        assertEquals(java.util.Set.of(2), TaskFormat.stopTokens(CHAR, chat));
        // the verifier sees the answer after the thinking
        assertEquals("42", TaskFormat.completionText(CHAR, chat, CHAR.encode("<think>\nso 6*7\n</think>\n\n42")));
        assertEquals(RAW.prompt(1, 2), chat.prompt(1, 2));
    }

    @Test
    void promptStartsWithBosWhenTheTokenizerHasOne() {
        Prompt p = new Prompt("x", "ab", null);
        // char tokenizer: 0 <pad>, 1 <bos>, 2 <eos>, 3 '\n', 4 ' ', then printable ASCII from 33: 'a' = 97 - 32 + 4
        int a = 'a' - 32 + 4;
        assertArrayEquals(new int[] {1, a, a + 1}, TaskFormat.promptIds(CHAR, RAW, p));
        assertArrayEquals(new int[] {10, 11}, TaskFormat.promptIds(BARE, RAW, p));
    }

    @Test
    void completionEndsWithEos() {
        int[] ids = TaskFormat.completionIds(CHAR, "7\n");
        assertArrayEquals(new int[] {'7' - 32 + 4, 3, 2}, ids);
        assertThrows(IllegalArgumentException.class, () -> TaskFormat.completionIds(BARE, "ab"));
    }

    @Test
    void completionTextStopsBeforeTheFirstEos() {
        int[] ids = TaskFormat.completionIds(CHAR, "027\n");
        assertEquals("027\n", TaskFormat.completionText(CHAR, RAW, ids));
        int[] more = {CHAR.encode("1")[0], 2, CHAR.encode("9")[0], 2};
        assertEquals("1", TaskFormat.completionText(CHAR, RAW, more));
        assertEquals("12", TaskFormat.completionText(CHAR, RAW, CHAR.encode("12")));
        assertEquals("ab", TaskFormat.completionText(BARE, RAW, new int[] {10, 11}));
    }

    @Test
    void roundTripOfABuiltinTaskSolution() {
        Task task = Tasks.builtin("pointer-chase", 256);
        Prompt p = task.prompt(3, 0);
        String solution = task.solution(p).orElseThrow();
        String back = TaskFormat.completionText(CHAR, RAW, TaskFormat.completionIds(CHAR, solution));
        assertEquals(solution, back);
        assertEquals(1.0, task.verify(p, back).reward());
    }

    @Test
    void solvedIdsAreThePromptThenTheSolutionThenEos() {
        Task task = Tasks.builtin("kv-recall", 128);
        Prompt p = task.prompt(0, 0);
        int[] ids = TaskFormat.solvedIds(CHAR, task, p);
        // bos, the prompt's characters, the solution's ("ddd\n"), eos
        assertEquals(1, ids[0]);
        assertEquals(p.text().length() + 1 + 4 + 1, ids.length);
        assertEquals(2, ids[ids.length - 1]);
        assertEquals(p.text() + task.solution(p).orElseThrow(), CHAR.decode(java.util.Arrays.copyOfRange(ids, 1, ids.length - 1)));
    }

    @Test
    void maxNewTokensIsTheSolutionPlusEosPlusAMargin() {
        Task task = Tasks.builtin("kv-recall", 128);
        Prompt p = task.prompt(0, 0);
        // "ddd\n" = 4 tokens, + eos = 5; 25 % of 5 rounded up = 2; + 8 = 15
        assertEquals(15, TaskFormat.maxNewTokens(task, p, CHAR, 99));
        Task noSolution = new Task() {
            public String name() {
                return "none";
            }

            public Prompt prompt(long seed, long index) {
                return new Prompt("n", "q", null);
            }

            public Verdict verify(Prompt prompt, String completion) {
                return Verdict.correct();
            }

            public Optional<String> solution(Prompt prompt) {
                return Optional.empty();
            }

            public OptionalInt size() {
                return OptionalInt.of(1);
            }
        };
        assertEquals(99, TaskFormat.maxNewTokens(noSolution, noSolution.prompt(0, 0), CHAR, 99));
    }
}
