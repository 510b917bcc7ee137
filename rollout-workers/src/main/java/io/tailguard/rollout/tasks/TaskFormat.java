package io.tailguard.rollout.tasks;

import io.tailguard.model.tokenizer.ChatFormat;
import io.tailguard.model.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Optional;
import java.util.Set;

/**
 * The one place where task text becomes token ids and back. Evaluation, the mismatch probe,
 * calibration and supervised pretraining all go through it, so a model trained on one side sees
 * exactly the token layout the others generate from and verify:
 *
 * <pre>
 * prompt      = [bos if the tokenizer has one] + encode(prompt text)
 * completion  = encode(solution text) + [eos]
 * </pre>
 *
 * Generation stops at eos; the completion text handed to a verifier is everything generated before
 * the first eos (eos itself is not text).
 *
 * <p>A task with a chat template ({@link Task#chat()}, {@link ChatTask}) is fed to the model as the
 * template renders its prompt text as a user turn ({@link ChatFormat#promptIds}, no bos added: a
 * template that wants one writes it); generation stops at eos or the template's end-of-turn token,
 * and the verifier gets the answer after the model's thinking ({@link ChatFormat#answer}).
 */
public final class TaskFormat {
    /** Margin over a solution's length when sizing generation: 25 % plus this many tokens. */
    static final int MARGIN_TOKENS = 8;

    private TaskFormat() {
    }

    /** The task's chat format's rendering of p.text(), or [bos if the tokenizer has one] + encode(p.text()). */
    public static int[] promptIds(Tokenizer t, Task task, Prompt p) {
        Optional<ChatFormat> chat = task.chat();
        if (chat.isPresent()) {
            return chat.get().promptIds(t, p.text());
        }
        int[] text = t.encode(p.text());
        int bos = t.bosId();
        if (bos < 0) {
            return text;
        }
        int[] ids = new int[text.length + 1];
        ids[0] = bos;
        System.arraycopy(text, 0, ids, 1, text.length);
        return ids;
    }

    /**
     * encode(solution) + [eos]: the teacher-forced target.
     *
     * @throws IllegalArgumentException if the tokenizer has no eos (generation could never stop)
     */
    public static int[] completionIds(Tokenizer t, String solution) {
        int eos = requireEos(t);
        int[] text = t.encode(solution);
        int[] ids = Arrays.copyOf(text, text.length + 1);
        ids[text.length] = eos;
        return ids;
    }

    /**
     * promptIds + completionIds of the task's worked solution (the prompt alone when the task has
     * none): a prompt as a model that solves it reads it, for calibration and held-out scoring.
     */
    public static int[] solvedIds(Tokenizer t, Task task, Prompt p) {
        int[] prompt = promptIds(t, task, p);
        int[] sol = task.solution(p).map(s -> completionIds(t, s)).orElse(new int[0]);
        int[] all = Arrays.copyOf(prompt, prompt.length + sol.length);
        System.arraycopy(sol, 0, all, prompt.length, sol.length);
        return all;
    }

    /**
     * The text of generated ids up to, not including, the first stop token (all of them without
     * one); for a chat task, the answer after the model's thinking.
     */
    public static String completionText(Tokenizer t, Task task, int[] outputIds) {
        Set<Integer> stops = task.chat().map(c -> c.stopIds(t)).orElse(t.eosId() >= 0 ? Set.of(t.eosId()) : Set.of());
        int end = tokensBeforeStop(outputIds, stops);
        String text = t.decode(end == outputIds.length ? outputIds : Arrays.copyOf(outputIds, end));
        return task.chat().isPresent() ? ChatFormat.answer(text) : text;
    }

    /** How many of the generated ids come before the first stop token. */
    public static int tokensBeforeStop(int[] outputIds, Set<Integer> stops) {
        for (int i = 0; i < outputIds.length; i++) {
            if (stops.contains(outputIds[i])) {
                return i;
            }
        }
        return outputIds.length;
    }

    /**
     * The tokens that end a completion: eos, and for a chat task the template's end-of-turn token.
     *
     * @throws IllegalArgumentException if the tokenizer has no eos
     */
    public static Set<Integer> stopTokens(Tokenizer t, Task task) {
        Set<Integer> out = new LinkedHashSet<>();
        out.add(requireEos(t));
        task.chat().ifPresent(c -> out.addAll(c.stopIds(t)));
        return Set.copyOf(out);
    }

    /**
     * How many tokens to generate for a prompt: for a task with a worked solution, the solution's
     * tokens plus eos plus a margin of 25 % + 8 (a model that rambles past that is wrong anyway);
     * otherwise the task's own budget ({@link Task#maxNewTokens}) where it has one, else {@code fallback}.
     */
    public static int maxNewTokens(Task task, Prompt p, Tokenizer t, int fallback) {
        Optional<String> solution = task.solution(p);
        if (solution.isEmpty() && task.maxNewTokens().isPresent()) {
            return task.maxNewTokens().getAsInt();
        }
        if (solution.isEmpty()) {
            if (fallback < 1) {
                throw new IllegalArgumentException("max new tokens fallback must be >= 1, got " + fallback);
            }
            return fallback;
        }
        int n = t.encode(solution.get()).length + 1;
        return n + (n + 3) / 4 + MARGIN_TOKENS;
    }

    /** The tokenizer's eos id; tasks need one to end a completion. */
    public static int requireEos(Tokenizer t) {
        int eos = t.eosId();
        if (eos < 0) {
            throw new IllegalArgumentException("the tokenizer has no eos token, so a completion cannot end");
        }
        return eos;
    }
}
