package io.tailguard.rollout.tasks;

import java.time.Duration;

/**
 * How a sandboxed run ended.
 *
 * @param outcome  the kind of ending; only {@link Outcome#PASSED} means the program exited 0 in limits
 *                 ({@link PythonSandbox#run}) or passed every test ({@link PythonSandbox#check})
 * @param exitCode the sandbox's exit status (128 + signal for a killed program), -1 if it never ran
 * @param output   stdout and stderr interleaved, at most the output limit
 * @param elapsed  wall time of the run
 * @param runId    unique name of the run; it appears in the argv of every process of the run and
 *                 names its scratch directory, so logs and leak checks can find them
 * @param reason   short reason for a Verdict ("exit code 1: AssertionError", "timeout after 2s", ...)
 */
public record SandboxResult(Outcome outcome, int exitCode, String output, Duration elapsed, String runId,
                            String reason) {

    public enum Outcome {
        PASSED, FAILED, WALL_TIMEOUT, CPU_LIMIT, MEMORY_LIMIT, OUTPUT_LIMIT, REFUSED, SETUP_FAILED
    }

    public boolean passed() {
        return outcome == Outcome.PASSED;
    }
}
