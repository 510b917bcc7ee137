package io.tailguard.model;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The Python that computes the reference side of the parity tests: {@code TAILGUARD_PYTHON} (.ci/run
 * builds a virtual environment with torch 2.13, transformers 5, peft and safetensors and points it
 * there), else {@code python3} on the PATH. A test that needs modules it cannot import is skipped,
 * unless {@code TAILGUARD_REQUIRE_TORCH=1} (.ci/run sets it), where it fails.
 */
public final class ReferencePython {
    public static final String PYTHON = System.getenv().getOrDefault("TAILGUARD_PYTHON", "python3");
    private static final ConcurrentHashMap<String, Boolean> IMPORTS = new ConcurrentHashMap<>();

    private ReferencePython() {
    }

    /** Skips (or, where required, fails) the calling test unless every module imports. */
    public static void need(String... modules) {
        String imports = "import " + String.join(", ", modules);
        boolean ok = IMPORTS.computeIfAbsent(imports, ReferencePython::imports);
        need(ok, PYTHON + " cannot '" + imports + "' (set TAILGUARD_PYTHON to a Python that can; .ci/run builds one)");
    }

    /** Skips the calling test unless {@code ok}, or fails it where the reference is required. */
    public static void need(boolean ok, String why) {
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_TORCH"))) {
            assertTrue(ok, why);
        }
        Assumptions.assumeTrue(ok, why);
    }

    private static boolean imports(String statement) {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", statement).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Runs a script of src/test/python with arguments; fails the test with its output when it fails. */
    public static String run(String script, String... args) {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, "src/test/python/" + script));
        cmd.addAll(List.of(args));
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            // one thread: the machine's cores are shared with the JVM under test and other builds
            pb.environment().put("OMP_NUM_THREADS", "1");
            pb.environment().put("RAYON_NUM_THREADS", "1");
            pb.environment().put("HF_HUB_OFFLINE", "1");
            pb.environment().put("TRANSFORMERS_VERBOSITY", "error");
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                fail(script + " did not finish: " + out);
            }
            assertEquals(0, p.exitValue(), script + " failed: " + out);
            return out;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
