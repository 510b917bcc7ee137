package io.tailguard.actors.cli;

import io.tailguard.model.tokenizer.ChatFormat;
import io.tailguard.rollout.tasks.ChatTask;
import io.tailguard.rollout.tasks.DatasetTask;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * --task, its knobs (--task-steps, --reward), --dataset and the chat template's options
 * (--chat-template, --system-prompt, --enable-thinking), shared by eval, mismatch, calibrate and train-sync.
 */
final class TaskOptions {
    @Option(names = "--task", required = true, completionCandidates = BuiltinTaskNames.class,
            description = "Built-in task (${COMPLETION-CANDIDATES}) or dataset task (math, code; needs --dataset).")
    String task;

    @Mixin
    TaskKnobs knobs;

    @Option(names = "--dataset", description = "JSON-lines file of a dataset task (math: {id,problem,answer}; code: {id,problem,tests}).")
    Path dataset;

    @Option(names = "--chat-template", defaultValue = "auto", paramLabel = "auto|on|off",
            description = "Render prompts with the checkpoint's chat template (chat_template.jinja or tokenizer_config.json's "
                    + "chat_template) as a user turn, with the generation prompt; generation also stops at its end-of-turn token. "
                    + "auto: for dataset tasks on a checkpoint with a template (default: ${DEFAULT-VALUE}).")
    String chatTemplate;

    @Option(names = "--system-prompt", description = "A system turn before each prompt (needs the chat template).")
    String systemPrompt;

    @Option(names = "--enable-thinking", paramLabel = "true|false",
            description = "The template's enable_thinking switch (Qwen3); left out: the template's default.")
    String enableThinking;

    private Optional<ChatFormat> chat;

    boolean isDataset() {
        return Tasks.datasetNames().contains(task);
    }

    /** Checks the combination before any model is loaded. */
    void validate() {
        if (isDataset() && dataset == null) {
            throw new BadInput("--task " + task + " needs --dataset FILE");
        }
        if (!isDataset() && !Tasks.builtinNames().contains(task)) {
            throw new BadInput("--task: unknown task \"" + task + "\"; known: "
                    + String.join(", ", Tasks.builtinNames()) + ", " + String.join(", ", Tasks.datasetNames()));
        }
        if (!isDataset() && dataset != null) {
            throw new BadInput("--dataset: " + task + " is a built-in task and takes no dataset file");
        }
        if (isDataset()) {
            knobs.refuseForDataset(task);
        } else {
            knobs.spec(task);
        }
    }

    /**
     * The chat format for the checkpoint in {@code checkpoint} (read once): empty for raw prompts.
     * A bad choice is bad input naming its flag; an unreadable template names its file and key.
     */
    Optional<ChatFormat> chat(Path checkpoint) {
        if (chat == null) {
            try {
                chat = ChatFormat.choose(ChatFormat.Mode.parse(chatTemplate), checkpoint, isDataset(), systemPrompt,
                        ChatFormat.parseThinking(enableThinking));
            } catch (IllegalArgumentException e) {
                throw BadInput.flagged(e, List.of("chat-template", "system-prompt", "enable-thinking"));
            }
        }
        return chat;
    }

    /**
     * For a command that renders no prompt (verify scores given text): the chat template's options
     * would change nothing, so any of them set is bad input naming its flag.
     */
    void refuseChat(String command) {
        String flag = !"auto".equals(chatTemplate) ? "--chat-template" : systemPrompt != null ? "--system-prompt"
                : enableThinking != null ? "--enable-thinking" : null;
        if (flag != null) {
            throw new BadInput(flag + ": " + command + " renders no prompt, so the chat template's options do not apply");
        }
    }

    /** {@link #resolve(int)} fed to the model through the checkpoint's chat template where {@link #chat} applies one. */
    Task resolve(int context, Path checkpoint) {
        return ChatTask.of(resolve(context), chat(checkpoint));
    }

    /**
     * The task: a built-in one at this context length, or the dataset (its skipped lines are
     * warned on stderr with their count; a missing or empty file is bad input).
     */
    Task resolve(int context) {
        validate();
        if (!isDataset()) {
            return knobs.spec(task).at(context);
        }
        DatasetTask t = Tasks.fromDataset(task, dataset);
        warnSkipped(t);
        return t;
    }

    /** A dataset task's skipped lines (of a chat task's dataset too) on stderr, with their count; nothing for other tasks. */
    static void warnSkipped(Task task) {
        Task inner = task instanceof ChatTask c ? c.task() : task;
        if (!(inner instanceof DatasetTask t) || t.skippedCount() == 0) {
            return;
        }
        for (String w : t.skipped()) {
            System.err.println("warning: " + w);
        }
        System.err.printf("warning: %s: %d line%s skipped, %d records read%n", t.file(), t.skippedCount(),
                t.skippedCount() == 1 ? "" : "s", t.size().orElse(0));
    }
}
