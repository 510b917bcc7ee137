package io.tailguard.rollout.tasks;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code code} verifier: the completion's last fenced Python block runs as a module in the
 * sandbox and the record's tests (Python statements with asserts) run against it from a separate
 * harness ({@link PythonSandbox#check}); reward 1 only if every test statement ran without an
 * exception. The tests are never visible to the completion, and the program's exit status is not
 * the verdict.
 */
final class CodeVerifier implements DatasetTask.Verifier {

    // ```lang? newline body ``` ; the body is taken lazily so that blocks do not merge.
    private static final Pattern FENCE = Pattern.compile("```[ \\t]*([A-Za-z0-9_+-]*)[^\\n]*\\n(.*?)```", Pattern.DOTALL);

    private final PythonSandbox sandbox;

    CodeVerifier(PythonSandbox sandbox) {
        this.sandbox = sandbox;
    }

    /** The last ```python (or ```py) block; without one, the last fenced block of any language. */
    static Optional<String> extractCode(String completion) {
        Matcher m = FENCE.matcher(completion);
        String lastPython = null;
        String lastAny = null;
        while (m.find()) {
            String lang = m.group(1).toLowerCase();
            lastAny = m.group(2);
            if (lang.equals("python") || lang.equals("py") || lang.equals("python3")) {
                lastPython = m.group(2);
            }
        }
        return Optional.ofNullable(lastPython != null ? lastPython : lastAny);
    }

    @Override
    public Verdict verify(Prompt prompt, String tests, String completion) {
        Optional<String> code = extractCode(completion);
        if (code.isEmpty() || code.get().isBlank()) {
            return Verdict.wrong("no code block found");
        }
        SandboxResult r = sandbox.check(code.get(), tests);
        return r.passed() ? Verdict.correct() : Verdict.wrong(r.reason());
    }
}
