package io.tailguard.model.tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * How a task's prompt text reaches an instruct model: as the user turn of a conversation rendered
 * by the checkpoint's chat template, after an optional system prompt, with the generation prompt and
 * the template's switches. eval, mismatch, calibrate and the rollouts all take prompt ids and stop
 * tokens from here, so they feed the model the same text.
 *
 * @param template     the checkpoint's template
 * @param systemPrompt a system turn before the user's, or null for none
 * @param thinking     Qwen3's {@code enable_thinking}: null leaves it undefined (the template's own
 *                     default; Qwen3's thinks)
 */
public record ChatFormat(ChatTemplate template, String systemPrompt, Boolean thinking) {

    /** Whether dataset prompts go through the chat template. Messages name it as the command line and the configuration do. */
    public enum Mode {
        /** On for a dataset task on a checkpoint with a template; built-in tasks keep their raw format. */
        AUTO,
        ON,
        OFF;

        /** "auto", "on" or "off" (any case). */
        public static Mode parse(String s) {
            String v = s == null ? "" : s.strip().toLowerCase(Locale.ROOT);
            return switch (v) {
                case "auto" -> AUTO;
                case "on" -> ON;
                case "off" -> OFF;
                default -> throw new IllegalArgumentException("chat-template: must be auto, on or off, got \"" + s + "\"");
            };
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public ChatFormat {
        Objects.requireNonNull(template, "template");
    }

    /**
     * "true", "false", or "" / "default" (left to the template).
     *
     * @throws IllegalArgumentException "enable-thinking: ..." for anything else
     */
    public static Boolean parseThinking(String s) {
        String v = s == null ? "" : s.strip().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "", "default" -> null;
            case "true" -> Boolean.TRUE;
            case "false" -> Boolean.FALSE;
            default -> throw new IllegalArgumentException("enable-thinking: must be true, false or default, got \"" + s + "\"");
        };
    }

    /**
     * The format a run uses for the checkpoint in {@code dir}: empty for raw prompts.
     *
     * @param dataset      whether the task is a dataset task (auto applies templates to those only)
     * @param systemPrompt null or empty: none
     * @throws IllegalArgumentException "chat-template: ..." when on is asked of a checkpoint without a
     *                                  template, "system-prompt: ..." / "enable-thinking: ..." when
     *                                  they are set but no template applies
     * @throws io.tailguard.model.io.CheckpointException when the checkpoint's template is unreadable or
     *                                  does not render (naming its file and key)
     */
    public static Optional<ChatFormat> choose(Mode mode, Path dir, boolean dataset, String systemPrompt, Boolean thinking) {
        String system = systemPrompt == null || systemPrompt.isEmpty() ? null : systemPrompt;
        Optional<ChatTemplate> t = mode == Mode.OFF ? Optional.empty() : ChatTemplate.fromCheckpoint(dir);
        if (mode == Mode.ON && t.isEmpty()) {
            throw new IllegalArgumentException("chat-template: on, but checkpoint " + dir + " has no chat template ("
                    + ChatTemplate.JINJA_FILE + ", or key " + ChatTemplate.KEY + " of " + ChatTemplate.CONFIG_FILE + ")");
        }
        boolean apply = mode == Mode.ON || (mode == Mode.AUTO && dataset && t.isPresent());
        if (!apply) {
            String why = mode == Mode.OFF ? "chat-template is off"
                    : t.isEmpty() ? "checkpoint " + dir + " has no chat template" : "auto applies it to dataset tasks only; on applies it to any prompt";
            if (system != null) {
                throw new IllegalArgumentException("system-prompt: no chat template applies (" + why + ")");
            }
            if (thinking != null) {
                throw new IllegalArgumentException("enable-thinking: no chat template applies (" + why + ")");
            }
            return Optional.empty();
        }
        return Optional.of(new ChatFormat(t.get(), system, thinking));
    }

    /** The prompt text: [system turn] + user turn + the generation prompt. */
    public String render(String userText) {
        List<ChatTemplate.Message> ms = new ArrayList<>(2);
        if (systemPrompt != null) {
            ms.add(new ChatTemplate.Message("system", systemPrompt));
        }
        ms.add(new ChatTemplate.Message("user", userText));
        Map<String, Object> switches = new LinkedHashMap<>();
        if (thinking != null) {
            switches.put("enable_thinking", thinking);
        }
        return template.render(ms, true, switches);
    }

    /**
     * The rendered prompt's ids. No bos is added: a template that wants one writes it, as
     * transformers' {@code apply_chat_template} adds no special tokens either.
     */
    public int[] promptIds(Tokenizer t, String userText) {
        return t.encode(render(userText));
    }

    /**
     * Where generation ends: the tokenizer's eos and the template's end-of-turn token (Qwen3's
     * {@code <|im_end|>}), the latter when it is one token of this tokenizer.
     */
    public Set<Integer> stopIds(Tokenizer t) {
        Set<Integer> out = new LinkedHashSet<>();
        if (t.eosId() >= 0) {
            out.add(t.eosId());
        }
        String eot = template.endOfTurn();
        if (!eot.isEmpty()) {
            int[] ids = t.encode(eot);
            if (ids.length == 1) {
                out.add(ids[0]);
            }
        }
        return out;
    }

    /**
     * The answer of a completion for a verifier: the text after the last {@code </think>} when the
     * model thought first (Qwen3's templates split a reply there too), else the whole text.
     */
    public static String answer(String completion) {
        int at = completion.lastIndexOf("</think>");
        return at < 0 ? completion : completion.substring(at + "</think>".length()).strip();
    }
}
