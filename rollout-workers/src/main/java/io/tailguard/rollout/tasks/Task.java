package io.tailguard.rollout.tasks;

import io.tailguard.model.tokenizer.ChatFormat;

import java.util.Optional;
import java.util.OptionalInt;

/**
 * A verifiable task: a source of prompts and a verifier that scores completions.
 *
 * <p>Prompts are addressed by {@code (seed, index)}. A generated (built-in) task has infinitely many
 * prompts: every index is valid, and the same {@code (seed, index)} always gives the same prompt.
 * A dataset task has {@link #size()} prompts, addressed by index {@code 0 .. size-1} in file order;
 * its seed is ignored (a caller that wants another order permutes the indices itself), which keeps
 * "record i of the file" a fixed meaning for evaluation.
 */
public interface Task {

    /** The task's name as given to {@link Tasks} ("kv-recall", "math", ...). */
    String name();

    /** The prompt at {@code index}; deterministic in {@code (seed, index)}. */
    Prompt prompt(long seed, long index);

    /** Scores {@code completion} (the generated text after the prompt) for {@code prompt}. */
    Verdict verify(Prompt prompt, String completion);

    /**
     * A correct worked completion, used for teacher forcing. Present for built-in tasks; empty for
     * dataset tasks (their files carry answers, not worked solutions).
     */
    Optional<String> solution(Prompt prompt);

    /**
     * A practice document for supervised pretraining: a context of about the task's context length
     * and a drill of many questions with their answers that the context decides, so that every
     * document carries a dense training signal for the skill the task's prompts test. A trainer
     * conditions on the context and learns the drill on every token. Its question lines use the same
     * notation as the task's prompts and completions, so what is learnt on them transfers to the task.
     * Deterministic in {@code (seed, index)} and drawn from a stream separate from
     * {@link #prompt}'s. Empty for tasks without one (dataset tasks).
     */
    default Optional<Practice> practice(long seed, long index) {
        return Optional.empty();
    }

    /** Number of prompts of a dataset task; empty for a generated task (any index is valid). */
    OptionalInt size();

    /**
     * The completion budget of a task without worked solutions, where its run fixed one (a dataset
     * task trained by `train` or `train-sync`: tailguard.train.max-new-tokens, --max-new-tokens);
     * empty: the caller's ({@link TaskFormat#maxNewTokens}). A task with worked solutions sizes
     * each completion by its solution instead.
     */
    default OptionalInt maxNewTokens() {
        return OptionalInt.empty();
    }

    /**
     * The chat template its prompts are rendered with ({@link ChatTask}); empty: raw text
     * ({@link TaskFormat} says how either becomes token ids).
     */
    default Optional<ChatFormat> chat() {
        return Optional.empty();
    }
}
