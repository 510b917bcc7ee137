package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class MathTaskTest {

    @TempDir
    static Path dir;
    static DatasetTask math;

    @BeforeAll
    static void writeDataset() throws IOException {
        Path file = dir.resolve("math.jsonl");
        Files.writeString(file, String.join("\n",
                "{\"id\":\"half\",\"problem\":\"What is 1 divided by 2?\",\"answer\":\"0.5\"}",
                "{\"id\":\"half-frac\",\"problem\":\"What is 1 divided by 2?\",\"answer\":\"\\\\frac{1}{2}\"}",
                "{\"id\":\"thousand\",\"problem\":\"10 * 100?\",\"answer\":\"1000\"}",
                "{\"id\":\"minus3\",\"problem\":\"2 - 5?\",\"answer\":\"-3\"}",
                "{\"id\":\"twelve\",\"problem\":\"3 * 4?\",\"answer\":12}",
                "{\"id\":\"million\",\"problem\":\"1000 * 1000?\",\"answer\":\"1,000,000\"}",
                "{\"id\":\"interval\",\"problem\":\"Solve x^2 < 1.\",\"answer\":\"(-1,1)\"}") + "\n");
        math = Tasks.fromDataset("math", file);
    }

    private static Verdict check(String id, String completion) {
        Prompt p = math.prompts().stream().filter(q -> q.id().equals(id)).findFirst().orElseThrow();
        return math.verify(p, completion);
    }

    @ParameterizedTest(name = "[{0}] accepts: {1}")
    @CsvSource(delimiter = '|', value = {
            "half      | So the answer is \\boxed{\\frac{1}{2}}.",
            "half      | \\boxed{\\dfrac{1}{2}}",
            "half      | \\boxed{0.50}",
            "half      | \\boxed{1/2}",
            "half      | \\boxed{\\left( \\frac{1}{2} \\right)}",
            "half      | The answer is $0.5$.",
            "half      | \\boxed{\\frac12}",
            "half-frac | \\boxed{0.5}",
            "half-frac | \\boxed{\\frac{2}{4}}",
            "half-frac | \\boxed{\\frac{\\frac{1}{4}}{\\frac{1}{2}}}",
            "thousand  | \\boxed{1,000}",
            "thousand  | \\boxed{1{,}000}",
            "thousand  | We get 1,000 in total.",
            "thousand  | \\boxed{1000.0}",
            "thousand  | \\boxed{\\text{1000}}",
            "minus3    | \\boxed{\u22123}",
            "minus3    | so x = \u22123",
            "minus3    | \\boxed{-3}",
            "minus3    | $\\boxed{-\\frac{6}{2}}$",
            "twelve    | First 3+4=7, no: 3*4 = 12.",
            "twelve    | \\boxed{12}.",
            "million   | \\boxed{1000000}",
            "interval  | \\boxed{(-1, 1)}",
            "interval  | \\boxed{\\left(-1,1\\right)}",
    })
    void acceptsEquivalentFormsOfTheAnswer(String id, String completion) {
        assertEquals(Verdict.correct(), check(id, completion));
    }

    @ParameterizedTest(name = "[{0}] rejects: {1}")
    @CsvSource(delimiter = '|', value = {
            "twelve    | the answer is not 12, it is \\boxed{13}                | wrong answer: got 13, expected 12",
            "twelve    | 12 apples and 1 more make 13                           | wrong answer: got 13, expected 12",
            "twelve    | \\boxed{12} is tempting but \\boxed{120} is right        | wrong answer: got 120, expected 12",
            "twelve    | \\boxed{1.2}                                            | wrong answer: got 1.2, expected 12",
            "half      | \\boxed{\\frac{1}{3}}                                    | wrong answer: got \\frac{1}{3}, expected 0.5",
            "half      | 0.5 would be wrong; \\boxed{0.51}                        | wrong answer: got 0.51, expected 0.5",
            "minus3    | \\boxed{3}                                              | wrong answer: got 3, expected -3",
            "thousand  | \\boxed{1,001}                                          | wrong answer: got 1,001, expected 1000",
            "thousand  | \\boxed{100}                                            | wrong answer: got 100, expected 1000",
            "thousand  | I do not know.                                         | no answer found",
            "thousand  | \\boxed{}                                               | no answer found",
    })
    void rejectsWrongAnswersEvenWhenTheRightNumberAppearsElsewhere(String id, String completion, String reason) {
        assertEquals(Verdict.wrong(reason), check(id, completion));
    }

    @Test
    void comparesRationalsExactlyNotInFloatingPoint() {
        // 0.1 + 0.2 == 0.30000000000000004 in doubles; here they must differ from 0.3 exactly
        assertEquals(false, MathAnswers.equivalent("0.30000000000000004", "0.3"));
        assertEquals(true, MathAnswers.equivalent("\\frac{1}{3}", "2/6"));
        assertEquals(false, MathAnswers.equivalent("0.333333333333333333", "1/3"));
        assertEquals(true, MathAnswers.equivalent("123456789012345678901234567890", "123,456,789,012,345,678,901,234,567,890"));
    }

    @Test
    void takesTheLastBoxedWithNestedBraces() {
        assertEquals("\\frac{1}{\\sqrt{2}}", MathAnswers.extract("\\boxed{1} then \\boxed{\\frac{1}{\\sqrt{2}}} end").orElseThrow());
        assertEquals("7", MathAnswers.extract("\\boxed{7} and an unclosed \\boxed{8").orElseThrow());
    }

    @Test
    void mathPromptsCarryTheProblemAndTheAnswer() {
        Prompt p = math.prompt(0, 0);
        assertEquals(new Prompt("half", "What is 1 divided by 2?", "0.5"), p);
        assertEquals(7, math.size().orElseThrow());
        assertEquals(true, math.solution(p).isEmpty());
    }
}
