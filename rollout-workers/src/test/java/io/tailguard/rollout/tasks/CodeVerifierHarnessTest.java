package io.tailguard.rollout.tasks;

import com.google.gson.Gson;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The code verifier against reward hacking: correct solutions of several shapes score 1, and every
 * known way to score without solving the task scores 0 (each hack below makes its function wrong, so
 * only a hole in the harness could let it pass). Under the earlier design, where the tests were
 * appended to the program and exit status 0 was the verdict, each of these hacks scored 1.
 */
class CodeVerifierHarnessTest {

    /** Roomy CPU and clock so that only the harness decides; the memory and output limits as in production. */
    static final SandboxLimits LIMITS =
            new SandboxLimits(Duration.ofSeconds(30), 10, 256L << 20, 16, 16 << 10, 1L << 20, 4L << 20);

    static DatasetTask task;

    /** Each record's tests; the ids name the function a solution must write. */
    static final Map<String, String> TESTS = new LinkedHashMap<>();

    static {
        TESTS.put("add", "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(10**30, 1) == 10**30 + 1\n");
        TESTS.put("sort_desc", "assert sorted(sort_desc([3, 1, 2]), reverse=True) == sort_desc([3, 1, 2])\n"
                + "assert sort_desc([3, 1, 2]) == [3, 2, 1]\nassert len(sort_desc([5, 4])) == 2\n");
        TESTS.put("stats", "m, s = stats([1.0, 2.0, 3.0])\nassert abs(m - 2.0) < 1e-9\n"
                + "assert stats([]) == (None, None)\nassert isinstance(stats([1.0]), tuple)\n");
        TESTS.put("shapes", "assert shapes() == {'a': [1, 2], (1, 2): {3}, 'b': b'\\x00', 'f': frozenset({1})}\n"
                + "assert type(shapes()['a']) is list\n");
        TESTS.put("checked", "try:\n    checked(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False, 'no error'\n"
                + "assert checked(4) == 2\n");
        TESTS.put("counter", "c = Counter(5)\nc.inc()\nc.inc()\nassert c.value == 7\nassert c.get() == 7\n"
                + "assert list(c.history()) == [5, 6, 7]\n");
        TESTS.put("square", "def check(candidate):\n    assert candidate(3) == 9\n    assert candidate(-2) == 4\n"
                + "check(square)\n");
    }

    static final Map<String, String> SOLUTIONS = Map.of(
            "add", "def add(a, b):\n    return a + b\n",
            "sort_desc", "def sort_desc(xs):\n    return sorted(xs, reverse=True)\n",
            "stats", "def stats(xs):\n    if not xs:\n        return (None, None)\n    m = sum(xs) / len(xs)\n"
                    + "    return (m, (sum((x - m) ** 2 for x in xs) / len(xs)) ** 0.5)\n",
            "shapes", "def shapes():\n    return {'a': [1, 2], (1, 2): {3}, 'b': b'\\x00', 'f': frozenset({1})}\n",
            "checked", "import math\ndef checked(x):\n    if x < 0:\n        raise ValueError('negative')\n"
                    + "    return int(math.isqrt(x))\n",
            "counter", "class Counter:\n    def __init__(self, v):\n        self.value = v\n        self.seen = [v]\n"
                    + "    def inc(self):\n        self.value += 1\n        self.seen.append(self.value)\n"
                    + "    def get(self):\n        return self.value\n"
                    + "    def history(self):\n        yield from self.seen\n"
                    + "if __name__ == '__main__':\n    print(Counter(int(input())).get())\n",
            "square", "def square(x):\n    print('squaring', x)\n    return x * x\n");

    @BeforeAll
    static void readTask(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("code.jsonl");
        Gson gson = new Gson();
        List<String> lines = new ArrayList<>();
        TESTS.forEach((id, tests) -> lines.add(gson.toJson(Map.of("id", id, "problem", "Write " + id + ".", "tests", tests))));
        Files.write(file, lines);
        PythonSandbox sandbox = new PythonSandbox(LIMITS);
        assertNotEquals(PythonSandbox.Isolation.NONE, sandbox.isolation(), "no namespaces here");
        task = Tasks.fromDataset("code", file, sandbox);
    }

    private static Verdict score(String id, String code) {
        for (Prompt p : task.prompts()) {
            if (p.id().equals(id)) {
                return task.verify(p, "Here is my solution.\n```python\n" + code + "```\n");
            }
        }
        throw new IllegalArgumentException(id);
    }

    @Test
    void correctSolutionsOfEveryShapeScoreOne() {
        SOLUTIONS.forEach((id, code) -> assertEquals(Verdict.correct(), score(id, code), id));
    }

    @Test
    void wrongSolutionsScoreZeroWithTheFailingTest() {
        assertEquals(Verdict.wrong("test 2 failed: assert add(-1, 1) == 0"), score("add", "def add(a, b):\n    return abs(a) + b\n"));
        assertEquals(Verdict.wrong("test 1 raised ZeroDivisionError: division by zero"),
                score("add", "def add(a, b):\n    return 1 / 0\n"));
        assertEquals(Verdict.wrong("test 1 raised NameError: name 'add' is not defined"),
                score("add", "def plus(a, b):\n    return a + b\n"));
        assertEquals(Verdict.wrong("the program raised ZeroDivisionError when imported"),
                score("add", "x = 1 / 0\ndef add(a, b):\n    return a + b\n"));
    }

    /** Early exits with status 0, in every place a program can put one: none of them is a verdict now. */
    @Test
    void exitingWithStatusZeroScoresZero() {
        List<String> exits = List.of(
                "import sys\nsys.exit(0)\n",
                "import os\nos._exit(0)\n",
                "raise SystemExit\n",
                "raise SystemExit(0)\n",
                "import atexit, os\natexit.register(lambda: os._exit(0))\n",
                "import sys, os\nsys.excepthook = lambda *a: os._exit(0)\nraise RuntimeError('boom')\n",
                "import os\nif os.fork():\n    os._exit(0)\n",
                "import threading, os\nthreading.Timer(0.0, os._exit, [0]).start()\nimport time\ntime.sleep(1)\n",
                "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
                "import os, signal\nfor target in (1, -1, 0):\n    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n",
                "import os, sys\nif sys.flags.optimize == 0:\n    os.execv(sys.executable, [sys.executable, '-O'] + sys.argv)\n");
        String wrong = "def add(a, b):\n    return 0\n";
        for (String exit : exits) {
            Verdict before = score("add", exit + wrong);
            Verdict after = score("add", wrong + exit);
            assertEquals(0.0, before.reward(), exit + " -> " + before.reason());
            assertEquals(0.0, after.reward(), exit + " -> " + after.reason());
        }
        // exiting from inside a call, even where a test catches the exception it expects
        assertEquals(0.0, score("checked", "import os\ndef checked(x):\n    os._exit(0)\n").reward());
        assertEquals(0.0, score("checked", "import sys\ndef checked(x):\n    sys.exit(0)\n").reward());
    }

    /** Values that claim to equal anything never reach a comparison. */
    @Test
    void objectsThatEqualEverythingScoreZero() {
        String alwaysEqual = "class E:\n    def __eq__(self, o):\n        return True\n    def __ne__(self, o):\n        return False\n"
                + "    def __hash__(self):\n        return 0\n    def __bool__(self):\n        return True\n";
        assertEquals(0.0, score("add", alwaysEqual + "def add(a, b):\n    return E()\n").reward());
        assertEquals(0.0, score("add", "class I(int):\n    def __eq__(self, o):\n        return True\n"
                + "def add(a, b):\n    return I(0)\n").reward());
        assertEquals(0.0, score("add", "class S(str):\n    def __eq__(self, o):\n        return True\n"
                + "def add(a, b):\n    return S('x')\n").reward());
        assertEquals(0.0, score("sort_desc", alwaysEqual + "def sort_desc(xs):\n    return [E(), E(), E()]\n").reward());
        assertEquals(0.0, score("stats", alwaysEqual + "def stats(xs):\n    return (E(), E())\n").reward());
        assertEquals(0.0, score("counter", alwaysEqual + "class Counter:\n    def __init__(self, v):\n        self.value = E()\n"
                + "    def inc(self):\n        pass\n    def get(self):\n        return E()\n    def history(self):\n        return [E()]\n").reward());
        assertEquals(0.0, score("add", "def add(a, b):\n    return float('nan')\n").reward());
    }

    /** The tests run in another process: patching builtins or shadowing their names changes nothing there. */
    @Test
    void patchingOrShadowingBuiltinsScoresZero() {
        assertEquals(0.0, score("sort_desc", "import builtins\nbuiltins.sorted = lambda xs, reverse=False: [3, 2, 1]\n"
                + "builtins.len = lambda x: 2\ndef sort_desc(xs):\n    return [3, 2, 1] if len(xs) == 2 else xs\n").reward());
        assertEquals(0.0, score("sort_desc", "def sorted(xs, reverse=False):\n    return xs\n"
                + "def len(x):\n    return 2\ndef sort_desc(xs):\n    return [9]\n").reward());
        assertEquals(0.0, score("stats", "def abs(x):\n    return 0\ndef isinstance(a, b):\n    return True\n"
                + "def stats(xs):\n    return (0.0, 0.0)\n").reward());
        assertEquals(0.0, score("add", "import builtins\nclass A(Exception):\n    pass\nbuiltins.AssertionError = A\n"
                + "def add(a, b):\n    return 0\n").reward());
    }

    /**
     * The tests are nowhere the program can look: not in its file, its memory, the file system or the
     * process table. This program searches all of them and prints whatever it finds; it finds nothing.
     */
    @Test
    void theTestsCannotBeReadByTheProgram() {
        String snoop = """
                import gc, os, sys
                needle = ''.join(['add(-1, ', '1) == 0'])     # a line of the tests, not in this source
                found = []
                try:
                    found += [l for l in open(__file__).read().splitlines() if needle in l]
                except Exception:
                    pass
                def strings(o):
                    if isinstance(o, dict):
                        return [v for v in list(o.keys()) + list(o.values()) if isinstance(v, str)]
                    if isinstance(o, (list, tuple, set)):
                        return [v for v in o if isinstance(v, str)]
                    return []
                for o in gc.get_objects():
                    found += [v for v in strings(o) if v is not needle and needle in v]
                for d, _, files in os.walk('/'):
                    for f in files:
                        try:
                            if needle.encode() in open(os.path.join(d, f), 'rb').read(1 << 20):
                                found.append(os.path.join(d, f))
                        except Exception:
                            pass
                for p in ['/proc/1/cmdline', '/proc/1/environ', '/proc/1/mem']:
                    try:
                        found.append(open(p, 'rb').read(100))
                    except Exception:
                        pass
                frame = sys._getframe()
                while frame is not None:
                    found += [k for k, v in frame.f_globals.items() if isinstance(v, str) and v is not needle and needle in v]
                    frame = frame.f_back
                print('FOUND', found)
                def add(a, b):
                    return 0
                """;
        PythonSandbox sandbox = new PythonSandbox(LIMITS);
        SandboxResult r = sandbox.check(snoop, TESTS.get("add"));
        assertEquals(SandboxResult.Outcome.FAILED, r.outcome(), r.reason() + "\n" + r.output());
        assertTrue(r.output().contains("FOUND []"), r.reason() + "\n" + r.output());
    }

    /** What the program prints, however it looks, is not the verdict. */
    @Test
    void printingAFakeVerdictScoresZero() {
        assertEquals(0.0, score("add", "print('{\"passed\": true, \"reason\": \"correct\", \"statements_run\": 3, \"program\": null}')\n"
                + "print('passed')\ndef add(a, b):\n    return 0\n").reward());
        assertEquals(0.0, score("add", "import os\nos.write(4, b'{\"ok\": true, \"value\": 3}\\n' * 3)\n"
                + "def add(a, b):\n    return 0\n").reward());
        assertEquals(0.0, score("add", "import os\nos.write(4, b'[' * 100000 + b'\\n')\ndef add(a, b):\n    return a + b\n").reward());
        assertEquals(0.0, score("add", "import os\nos.close(4)\nos.close(3)\ndef add(a, b):\n    return a + b\n").reward());
    }

    /** Several checks in parallel, as rollout workers run them, do not see each other. */
    @Test
    void concurrentChecksAreIndependent() throws Exception {
        List<Thread> threads = new ArrayList<>();
        List<Verdict> right = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Verdict> wrong = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < 3; i++) {
            threads.add(new Thread(() -> right.add(score("add", SOLUTIONS.get("add")))));
            threads.add(new Thread(() -> wrong.add(score("add", "def add(a, b):\n    return a - b\n"))));
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(3, right.size());
        right.forEach(v -> assertEquals(Verdict.correct(), v));
        wrong.forEach(v -> assertFalse(v.isCorrect(), v.reason()));
    }
}
