package io.tailguard.model.tokenizer;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen3's real tokenizer and chat template against transformers itself: token ids of a corpus of
 * strings (unicode, CJK, emoji, code, numbers, whitespace runs, special tokens), and conversations
 * (system prompts, several turns, assistant turns with thinking, enable_thinking on, off and left
 * out, with and without the generation prompt) rendered and tokenized. transformers computes every
 * expected value, in one Python process for the class.
 */
class Qwen3ChatParityTest {

    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private static Path dir;
    private static HfTokenizer tok;
    private static ChatTemplate template;
    private static List<String> texts;
    private static List<Conversation> conversations;
    private static JsonObject expected;

    /** One conversation and the switches it is rendered with; thinking null: left out. */
    record Conversation(List<ChatTemplate.Message> messages, boolean addGenerationPrompt, Boolean thinking) {
        Map<String, Object> switches() {
            Map<String, Object> m = new HashMap<>();
            if (thinking != null) {
                m.put("enable_thinking", thinking);
            }
            return m;
        }
    }

    @BeforeAll
    static void reference(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
        dir = Qwen3Reference.files();
        Qwen3Reference.needTransformers();
        texts = corpus();
        conversations = conversations();
        JsonObject req = new JsonObject();
        req.addProperty("dir", dir.toAbsolutePath().toString());
        req.add("texts", GSON.toJsonTree(texts));
        JsonArray cs = new JsonArray();
        for (Conversation c : conversations) {
            JsonObject o = new JsonObject();
            JsonArray ms = new JsonArray();
            for (ChatTemplate.Message m : c.messages()) {
                Map<String, String> mm = new LinkedHashMap<>();
                mm.put("role", m.role());
                mm.put("content", m.content());
                if (m.reasoning() != null) {
                    mm.put("reasoning_content", m.reasoning());
                }
                ms.add(GSON.toJsonTree(mm));
            }
            o.add("messages", ms);
            o.addProperty("add_generation_prompt", c.addGenerationPrompt());
            if (c.thinking() != null) {
                o.addProperty("enable_thinking", c.thinking());
            }
            cs.add(o);
        }
        req.add("conversations", cs);
        Path in = tmp.resolve("request.json");
        Path out = tmp.resolve("reference.json");
        Files.writeString(in, GSON.toJson(req), StandardCharsets.UTF_8);
        Qwen3Reference.python("chat_ref.py", in.toAbsolutePath().toString(), out.toAbsolutePath().toString());
        expected = JsonParser.parseString(Files.readString(out, StandardCharsets.UTF_8)).getAsJsonObject();
        tok = HfTokenizer.load(dir.resolve("tokenizer.json"));
        template = ChatTemplate.fromCheckpoint(dir).orElseThrow();
    }

    @AfterAll
    static void close() {
        if (tok != null) {
            tok.close();
        }
    }

    @Test
    void corpusIsLargeAndVaried() {
        assertTrue(texts.size() >= 200, "corpus has " + texts.size() + " strings");
        assertTrue(conversations.size() >= 40, conversations.size() + " conversations");
    }

    @Test
    void tokenIdsEqualTransformers() {
        JsonArray ids = expected.getAsJsonArray("ids");
        assertEquals(texts.size(), ids.size());
        for (int i = 0; i < texts.size(); i++) {
            assertArrayEquals(ints(ids.get(i)), tok.encode(texts.get(i)), "string " + i + ": " + GSON.toJson(texts.get(i)));
        }
    }

    @Test
    void renderedPromptsEqualTransformers() {
        JsonArray rendered = expected.getAsJsonArray("rendered");
        for (int i = 0; i < conversations.size(); i++) {
            Conversation c = conversations.get(i);
            assertEquals(rendered.get(i).getAsString(), template.render(c.messages(), c.addGenerationPrompt(), c.switches()),
                    "conversation " + i + ": " + c);
        }
    }

    @Test
    void renderedIdsEqualTransformers() {
        JsonArray ids = expected.getAsJsonArray("rendered_ids");
        for (int i = 0; i < conversations.size(); i++) {
            Conversation c = conversations.get(i);
            assertArrayEquals(ints(ids.get(i)), tok.encode(template.render(c.messages(), c.addGenerationPrompt(), c.switches())),
                    "conversation " + i + ": " + c);
        }
    }

    @Test
    void endOfTurnIsImEnd() {
        assertEquals("<|im_end|>", template.endOfTurn());
        // tokenizer.json's added token <|im_end|> is id 151645
        assertArrayEquals(new int[] {151645}, tok.encode(template.endOfTurn()));
        // tokenizer_config.json's eos_token is <|im_end|> too: one stop token
        assertEquals(java.util.Set.of(151645), new ChatFormat(template, null, null).stopIds(tok));
    }

    private static int[] ints(JsonElement e) {
        JsonArray a = e.getAsJsonArray();
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsInt();
        }
        return out;
    }

    /** At least 200 strings: hand-picked cases, then systematic mixes of them. */
    static List<String> corpus() {
        List<String> base = List.of(
                "", " ", "a", "Hello, world!", "hello world", "HELLO WORLD", "Hello\nworld", "  leading spaces",
                "trailing spaces   ", "tab\tseparated\tvalues", "line one\r\nline two", "\n", "\n\n", "\n\n\n\n",
                "    ", "\t\t", " \n \n ", "a  b   c    d", "end with newline\n",
                "0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "-273.15", "1,000,000", "6.022e23",
                "0x1F", "2026-12-06", "12:34:56", "1/2 + 3/4 = 5/4", "$12.50", "99%", "v1.2.3", "+44 20 7946 0958",
                "x^2 + y^2 = r^2", "\\frac{1}{2}", "\\boxed{42}", "∫₀¹ x² dx = ⅓", "√2 ≈ 1.41421356",
                "café", "naïve résumé", "Straße", "ǅemal", "Ελληνικά", "Русский текст", "עברית", "العربية",
                "हिन्दी", "ภาษาไทย", "한국어 텍스트", "日本語のテキスト", "中文文本测试", "你好，世界！", "漢字とかな交じり文",
                "🙂", "👍🏽", "👨‍👩‍👧‍👦", "🇯🇵🇫🇷", "emoji 🎉 in text 🚀!", "e\u0301", "\u00a0non-breaking\u00a0space",
                "zero\u200bwidth", "\ufeffBOM", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ℌ𝔢𝔩𝔩𝔬",
                "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
                "if __name__ == \"__main__\":\n    main()", "SELECT * FROM t WHERE id = 1;", "<div class=\"a\">x</div>",
                "{\"key\": [1, 2, {\"nested\": null}]}", "a->b; c=>d; e::f", "x!=y && y<=z || z>=w",
                "    indented four\n        indented eight", "#include <stdio.h>", "print('it''s')",
                "`code` and ```fenced```", "C:\\Users\\path", "https://example.com/a?b=c&d=e#f",
                "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
                "<|im_start|>user\nHi<|im_end|>\n", "<think>\nreasoning\n</think>\n\nanswer",
                "<|im_start|>assistant\n<think>\n\n</think>\n\n", "<|im_", "im_end|>", "<|vision_start|><|image_pad|>",
                "<|endoftext|><|endoftext|>", "text<|im_end|>more", "<tool_response>\n{}\n</tool_response>",
                "The quick brown fox jumps over the lazy dog.", "It's a test—don't worry…", "“curly quotes” and ‘single’",
                "What is 17 * 23? Answer: 391.", "Solve for x: 2x + 3 = 11.", "Let's think step by step.",
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "A\u3000full-width space", "ｆｕｌｌｗｉｄｔｈ",
                "mixed中文and English混合", "数字123と文字", "!!!???...", "----====____", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "\u0000nul", "control\u0007bell", "'s 't 're 've 'm 'll 'd", "I'M SHOUTING'S", "don't can't won't");
        List<String> out = new ArrayList<>(base);
        String[] joins = {" ", "\n", "  ", "\t", "\n\n", ""};
        for (int i = 0; out.size() < base.size() + 120; i++) {
            String a = base.get((i * 7) % base.size());
            String b = base.get((i * 13 + 5) % base.size());
            out.add(a + joins[i % joins.length] + b);
        }
        for (int n = 1; n <= 12; n++) {
            out.add(" ".repeat(n) + "x" + " ".repeat(n));
            out.add("a" + "\n".repeat(n) + "b");
        }
        long v = 1;
        for (int i = 0; i < 12; i++) {
            v = v * 37 + 11;
            out.add(Long.toString(v));
            out.add("value " + v + " and " + (v % 997) + "." + (v % 100));
        }
        return out;
    }

    /** Conversations over the template's cases, at least 40. */
    static List<Conversation> conversations() {
        List<String> users = List.of("What is 2 + 2?", "Write a Python function that reverses a list.",
                "解方程 x^2 = 4。", "Explain  whitespace\n\n and\ttabs.", "emoji 🎉 and <|im_start|> inside text",
                "<tool_response>\nok\n</tool_response>", "  padded question  \n");
        List<String> assistants = List.of("4", "<think>\nSimple arithmetic.\n</think>\n\nThe answer is 4.",
                "def rev(xs):\n    return xs[::-1]\n", "<think>\n\n</think>\n\nx = 2 or x = -2.",
                "\n\nleading newlines", "<think>only thinking</think>");
        List<String> systems = List.of("You are a helpful assistant.", "Answer with \\boxed{}.\nBe brief.", "系统提示");
        List<Boolean> thinking = java.util.Arrays.asList(null, Boolean.TRUE, Boolean.FALSE);
        List<Conversation> out = new ArrayList<>();
        int k = 0;
        for (int turns = 1; turns <= 3; turns++) {
            for (int sys = 0; sys <= systems.size(); sys++) {
                for (Boolean think : thinking) {
                    List<ChatTemplate.Message> ms = new ArrayList<>();
                    if (sys < systems.size()) {
                        ms.add(new ChatTemplate.Message("system", systems.get(sys)));
                    }
                    for (int t = 0; t < turns; t++) {
                        ms.add(new ChatTemplate.Message("user", users.get((k + t) % users.size())));
                        if (t < turns - 1) {
                            ms.add(new ChatTemplate.Message("assistant", assistants.get((k + t) % assistants.size())));
                        }
                    }
                    out.add(new Conversation(List.copyOf(ms), true, think));
                    // the same conversation answered, rendered whole as for training
                    List<ChatTemplate.Message> answered = new ArrayList<>(ms);
                    answered.add(new ChatTemplate.Message("assistant", assistants.get(k % assistants.size())));
                    out.add(new Conversation(List.copyOf(answered), false, think));
                    k++;
                }
            }
        }
        // reasoning given apart from the content, and a system message after the first turn
        out.add(new Conversation(List.of(new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("assistant", "Hello!", "The user greets me.")), false, null));
        out.add(new Conversation(List.of(new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("assistant", "Hello!", "Greeting."), new ChatTemplate.Message("user", "Bye")), true, false));
        out.add(new Conversation(List.of(new ChatTemplate.Message("user", "Hi"),
                new ChatTemplate.Message("system", "Now answer in French."), new ChatTemplate.Message("user", "Bye")), true, null));
        return out;
    }
}
