package io.tailguard.model.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.tailguard.model.io.CheckpointException;
import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeStore;
import jinjava.de.odysseus.el.tree.impl.Builder;
import jinjava.de.odysseus.el.tree.impl.Cache;
import jinjava.de.odysseus.el.tree.impl.Parser;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ExpressionFactory;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A checkpoint's chat template: the Jinja text that turns a conversation into the prompt an
 * instruct model was trained on, rendered as transformers' {@code apply_chat_template} renders it.
 * It comes from {@code chat_template.jinja} (what transformers 5 saves) or else the
 * {@code chat_template} key of {@code tokenizer_config.json}.
 *
 * <p>The engine is Jinjava, configured like transformers' Jinja environment ({@code trim_blocks},
 * {@code lstrip_blocks}, no kept trailing newline, Jinja's operator precedence and whitespace
 * control), with what Jinja templates use and Jinjava lacks registered beside it: Python's slice
 * syntax ({@link JinjaSyntax}), Python string and dict methods ({@link PyMethods}), transformers'
 * {@code tojson} ({@link PyJson}) and {@code raise_exception}. Templates are used as written.
 */
public final class ChatTemplate {

    /** One turn of a conversation; {@code reasoning} (a model's thinking) may be null. */
    public record Message(String role, String content, String reasoning) {
        public Message(String role, String content) {
            this(role, content, null);
        }
    }

    public static final String JINJA_FILE = "chat_template.jinja";
    public static final String CONFIG_FILE = "tokenizer_config.json";
    public static final String KEY = "chat_template";

    private static final Jinjava ENGINE = engine();
    /** An assistant reply no template rewrites, to find what a template writes after a turn. */
    private static final String PROBE = "TailguardEndOfTurnProbe";

    private final String template;
    private final String prepared;
    private final String where;
    private final Map<String, Object> specialTokens;
    private final String endOfTurn;

    private ChatTemplate(String template, String where, Map<String, Object> specialTokens) {
        this.template = template;
        // Jinja (keep_trailing_newline=False) drops one newline at the end of the template's text
        this.prepared = JinjaSyntax.lstripBlocks(template.endsWith("\n") ? template.substring(0, template.length() - 1) : template);
        this.where = where;
        this.specialTokens = Map.copyOf(specialTokens);
        for (String f : JinjaSyntax.filterNames(template)) {
            if (ENGINE.getGlobalContext().getFilter(f) == null) {
                throw new CheckpointException(where + ": the chat template uses an unknown filter: " + f);
            }
        }
        // A trial render catches syntax errors and unknown functions at load time.
        String probe = render(List.of(new Message("user", "Hello"), new Message("assistant", PROBE)), false, Map.of());
        int at = probe.lastIndexOf(PROBE);
        this.endOfTurn = at < 0 ? "" : PyMethods.strip(probe.substring(at + PROBE.length()), null, true, true);
        render(List.of(new Message("user", "Hello")), true, Map.of());
    }

    /**
     * The template of checkpoint directory {@code dir}, if it has one.
     *
     * @throws CheckpointException naming the file and key when a template is there but unreadable
     *                             or not a template this engine renders
     */
    public static Optional<ChatTemplate> fromCheckpoint(Path dir) {
        Path config = dir.resolve(CONFIG_FILE);
        JsonObject cfg = new JsonObject();
        if (Files.isRegularFile(config)) {
            try {
                JsonElement e = JsonParser.parseString(Files.readString(config));
                if (e != null && e.isJsonObject()) {
                    cfg = e.getAsJsonObject();
                }
            } catch (IOException | JsonParseException ex) {
                throw new CheckpointException(config + ": cannot read: " + ex.getMessage(), ex);
            }
        }
        Map<String, Object> specials = specialTokens(cfg);
        Path jinja = dir.resolve(JINJA_FILE);
        if (Files.isRegularFile(jinja)) {
            try {
                return Optional.of(new ChatTemplate(Files.readString(jinja), jinja.toString(), specials));
            } catch (IOException ex) {
                throw new CheckpointException(jinja + ": cannot read: " + ex.getMessage(), ex);
            }
        }
        JsonElement t = cfg.get(KEY);
        if (t == null || t.isJsonNull()) {
            return Optional.empty();
        }
        String where = config + ": key " + KEY;
        if (t.isJsonPrimitive() && t.getAsJsonPrimitive().isString()) {
            return Optional.of(new ChatTemplate(t.getAsString(), where, specials));
        }
        // the older list form: [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        if (t.isJsonArray()) {
            for (JsonElement named : t.getAsJsonArray()) {
                if (named.isJsonObject() && named.getAsJsonObject().has("name")
                        && "default".equals(named.getAsJsonObject().get("name").getAsString())
                        && named.getAsJsonObject().get("template").isJsonPrimitive()) {
                    return Optional.of(new ChatTemplate(named.getAsJsonObject().get("template").getAsString(),
                            where + " (default)", specials));
                }
            }
        }
        throw new CheckpointException(where + ": expected a template string or a list holding one named \"default\"");
    }

    /**
     * A template given as text; {@code where} names its file and key in messages.
     *
     * @throws CheckpointException when the template does not parse or render
     */
    public static ChatTemplate of(String template, String where, Map<String, String> specialTokens) {
        return new ChatTemplate(template, where, new HashMap<>(specialTokens));
    }

    /** tokenizer_config.json's special tokens, as transformers passes them to the template (unset ones left out). */
    private static Map<String, Object> specialTokens(JsonObject cfg) {
        Map<String, Object> out = new HashMap<>();
        for (String k : List.of("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")) {
            JsonElement v = cfg.get(k);
            if (v != null && v.isJsonObject()) {
                v = v.getAsJsonObject().get("content");
            }
            if (v != null && v.isJsonPrimitive()) {
                out.put(k, v.getAsString());
            }
        }
        return out;
    }

    /** Where the template came from: a file, or a file and key. */
    public String where() {
        return where;
    }

    /** The template's text. */
    public String text() {
        return template;
    }

    /**
     * What the template writes after an assistant turn, trimmed (Qwen3: {@code <|im_end|>}); empty
     * when it writes nothing there.
     */
    public String endOfTurn() {
        return endOfTurn;
    }

    /**
     * The conversation as the template renders it, with {@code add_generation_prompt} and the
     * template's switches ({@code enable_thinking} and the like; a switch left out stays undefined).
     *
     * @throws CheckpointException naming the template's file and key when rendering fails (including a
     *                             template's own {@code raise_exception})
     */
    public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> switches) {
        Map<String, Object> ctx = new HashMap<>(specialTokens);
        ctx.putAll(switches);
        List<Map<String, Object>> ms = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("role", m.role());
            o.put("content", m.content());
            if (m.reasoning() != null) {
                o.put("reasoning_content", m.reasoning());
            }
            ms.add(o);
        }
        ctx.put("messages", ms);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        RenderResult r;
        try {
            r = ENGINE.renderForResult(prepared, ctx);
        } catch (RuntimeException ex) {
            throw new CheckpointException(where + ": the chat template does not render: " + oneLine(ex.getMessage()), ex);
        }
        for (TemplateError e : r.getErrors()) {
            // Jinjava reports an unclosed block as a warning; Jinja refuses the template
            if (e.getSeverity() == TemplateError.ErrorType.FATAL || e.getReason() == TemplateError.ErrorReason.SYNTAX_ERROR
                    || e.getReason() == TemplateError.ErrorReason.MISSING) {
                String message = oneLine(e.getMessage());
                Throwable cause = e.getException();
                while (cause != null && cause.getCause() != null && cause.getCause() != cause) {
                    cause = cause.getCause();
                }
                if (cause != null && cause.getMessage() != null && !message.contains(cause.getMessage())) {
                    message += ": " + oneLine(cause.getMessage());
                }
                throw new CheckpointException(where + ": the chat template does not render: line " + e.getLineno() + ": " + message);
            }
        }
        return r.getOutput();
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ');
    }

    private static Jinjava engine() {
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(false) // Jinja's rule is applied to the text: JinjaSyntax.lstripBlocks
                .withFailOnUnknownTokens(false)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withParseWhitespaceControlStrictly(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true)
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUsePyishObjectMapper(true)
                        .withKeepNullableLoopValues(true)
                        .withHandleBackslashInQuotesOnly(true)
                        .build())
                .withElResolver(new CompositeELResolver() {
                    {
                        add(new PyMethods());
                        add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
                    }
                })
                .build();
        Jinjava j = new PySyntaxJinjava(config);
        j.getGlobalContext().registerFilter(new PyJson());
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", JinjaSyntax.FUNCTION,
                accessible(JinjaSyntax.class, "slice", Object.class, Object.class, Object.class, Object.class)));
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                accessible(ChatTemplate.class, "raiseException", Object.class)));
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                accessible(ChatTemplate.class, "strftimeNow", Object.class)));
        return j;
    }

    private static Method accessible(Class<?> c, String name, Class<?>... params) {
        try {
            Method m = c.getDeclaredMethod(name, params);
            m.setAccessible(true);
            return m;
        } catch (NoSuchMethodException ex) {
            throw new IllegalStateException(ex);
        }
    }

    /** transformers' raise_exception: a template refusing its input. */
    static Object raiseException(Object message) {
        throw new IllegalArgumentException(String.valueOf(message));
    }

    /**
     * transformers' strftime_now: the local time now in Python's strftime format (Llama 3's
     * templates date their system turn with it). The common directives are supported; any other
     * is refused rather than written wrong.
     */
    static String strftimeNow(Object format) {
        java.time.ZonedDateTime now = java.time.ZonedDateTime.now();
        String f = String.valueOf(format);
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < f.length(); i++) {
            char c = f.charAt(i);
            if (c != '%' || i + 1 >= f.length()) {
                out.append(c);
                continue;
            }
            char d = f.charAt(++i);
            String pattern = switch (d) {
                case 'd' -> "dd";
                case 'm' -> "MM";
                case 'Y' -> "yyyy";
                case 'y' -> "yy";
                case 'b' -> "MMM";
                case 'B' -> "MMMM";
                case 'a' -> "EEE";
                case 'A' -> "EEEE";
                case 'H' -> "HH";
                case 'I' -> "hh";
                case 'M' -> "mm";
                case 'S' -> "ss";
                case 'p' -> "a";
                case 'j' -> "DDD";
                case '%' -> null;
                default -> throw new IllegalArgumentException("strftime_now: unsupported directive %" + d);
            };
            out.append(pattern == null ? "%" : now.format(java.time.format.DateTimeFormatter.ofPattern(pattern, java.util.Locale.ENGLISH)));
        }
        return out.toString();
    }

    /** Jinjava whose expressions are parsed with Python's slice syntax ({@link JinjaSyntax}). */
    private static final class PySyntaxJinjava extends Jinjava {
        private final ExpressionFactory factory = new ExpressionFactoryImpl(
                new TreeStore(new PySyntax(Builder.Feature.METHOD_INVOCATIONS, Builder.Feature.VARARGS), new Cache(256)),
                new TruthyTypeConverter());

        PySyntaxJinjava(JinjavaConfig config) {
            super(config);
        }

        @Override
        public ExpressionFactory getExpressionFactory() {
            return factory;
        }
    }

    private static final class PySyntax extends ExtendedSyntaxBuilder {
        private static final long serialVersionUID = 1L;

        PySyntax(Builder.Feature... features) {
            super(features);
        }

        @Override
        protected Parser createParser(String expression) {
            return new ExtendedParser(this, JinjaSyntax.expression(expression));
        }
    }
}
