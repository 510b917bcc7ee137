package io.tailguard.rollout.tasks;

import java.util.Optional;

/** The {@code math} verifier: the completion's final answer must equal the record's answer. */
final class MathVerifier implements DatasetTask.Verifier {

    @Override
    public Verdict verify(Prompt prompt, String answer, String completion) {
        Optional<String> got = MathAnswers.extract(completion);
        if (got.isEmpty() || MathAnswers.normalise(got.get()).isEmpty()) {
            return Verdict.wrong("no answer found");
        }
        return MathAnswers.equivalent(got.get(), answer) ? Verdict.correct()
                : Verdict.wrong("wrong answer: got " + BuiltinTask.quote(got.get().strip())
                        + ", expected " + BuiltinTask.quote(answer));
    }
}
