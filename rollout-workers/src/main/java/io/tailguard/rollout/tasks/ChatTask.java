package io.tailguard.rollout.tasks;

import io.tailguard.model.tokenizer.ChatFormat;

import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A task whose prompts an instruct model reads through the checkpoint's chat template. Prompts,
 * answers and verification are the wrapped task's, unchanged (prompt text stays the problem as
 * written; verifiers of built-in tasks read it); only {@link TaskFormat} renders them, and stops
 * generation at the template's end-of-turn token too.
 */
public final class ChatTask implements Task {
    private final Task task;
    private final ChatFormat chat;

    public ChatTask(Task task, ChatFormat chat) {
        this.task = Objects.requireNonNull(task, "task");
        this.chat = Objects.requireNonNull(chat, "chat");
    }

    /** The task with the format, or the task itself when the format is empty. */
    public static Task of(Task task, Optional<ChatFormat> chat) {
        return chat.isPresent() ? new ChatTask(task, chat.get()) : task;
    }

    /** The wrapped task. */
    public Task task() {
        return task;
    }

    @Override
    public String name() {
        return task.name();
    }

    @Override
    public Prompt prompt(long seed, long index) {
        return task.prompt(seed, index);
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        return task.verify(prompt, completion);
    }

    @Override
    public Optional<String> solution(Prompt prompt) {
        return task.solution(prompt);
    }

    @Override
    public Optional<Practice> practice(long seed, long index) {
        return task.practice(seed, index);
    }

    @Override
    public OptionalInt size() {
        return task.size();
    }

    @Override
    public OptionalInt maxNewTokens() {
        return task.maxNewTokens();
    }

    @Override
    public Optional<ChatFormat> chat() {
        return Optional.of(chat);
    }
}
