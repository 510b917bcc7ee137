package io.tailguard.model.tokenizer;

import io.tailguard.model.io.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The template engine's Jinja semantics on hand-written templates; expected texts worked out by hand from Jinja's rules. */
class ChatTemplateTest {

    @TempDir
    Path dir;

    private static String render(String template, Map<String, Object> switches, ChatTemplate.Message... ms) {
        return ChatTemplate.of(template, "t", Map.of()).render(List.of(ms), true, switches);
    }

    @Test
    void pythonSlicesWithStepsAndOmittedBounds() {
        String t = "{% for m in messages[::-1] %}{{ m.content }}{% endfor %}|{{ messages[1:][0].content }}"
                + "|{{ 'abcdef'[::2] }}|{{ 'abcdef'[-2:] }}|{{ 'abcdef'[:-4] }}|{{ [1,2,3,4,5][4:0:-2] }}";
        assertEquals("cba|b|ace|ef|ab|[5, 3]", render(t, Map.of(), new ChatTemplate.Message("user", "a"),
                new ChatTemplate.Message("assistant", "b"), new ChatTemplate.Message("user", "c")));
    }

    @Test
    void namespacesKeepJinjasPrecedenceAndCanBeAssigned() {
        String t = "{% set ns = namespace(last=messages|length - 1, seen=false) %}{% set ns.seen = true %}{{ ns.last }} {{ ns.seen }}";
        assertEquals("1 true", render(t, Map.of(), new ChatTemplate.Message("user", "a"), new ChatTemplate.Message("user", "b")));
    }

    @Test
    void pythonStringMethods() {
        String t = "{% if m.startswith('<a>') %}S{% endif %} {% if m.endswith('z') and not m.endswith('y') %}E{% endif %} {{ m.split('|')[-1] }} {{ m.split('|')|length }} "
                + "[{{ '\\n\\nx\\n'.lstrip('\\n') }}] [{{ '  y  '.strip() }}] [{{ 'xxyxx'.rstrip('x') }}] {{ 'a b  c'.split()|length }}";
        Map<String, Object> vars = Map.of("m", "<a>b||c|z");
        assertEquals("S E z 4 [x\n] [y] [xxy] 3", ChatTemplate.of(t, "t", Map.of()).render(List.of(), false, vars));
    }

    @Test
    void whitespaceControlAsJinjaWithTrimAndLstripBlocks() {
        // lstrip_blocks strips only the spaces that start a line; trim_blocks eats the newline after a block tag
        String t = "a {% if true %}x{% endif %}|\n    {% if true %}\ny{% endif %}\n{{- ' z' }}\n";
        assertEquals("a x|\ny z", render(t, Map.of()));
    }

    @Test
    void switchesAreDefinedOnlyWhenGiven() {
        String t = "{% if enable_thinking is defined and enable_thinking is false %}off{% elif enable_thinking is defined %}on{% else %}unset{% endif %}";
        assertEquals("off", render(t, Map.of("enable_thinking", false)));
        assertEquals("on", render(t, Map.of("enable_thinking", true)));
        assertEquals("unset", render(t, Map.of()));
    }

    @Test
    void tojsonWritesAsPythonsJsonDumps() {
        assertEquals("{\"name\": \"f\", \"args\": [1, \"é\\n\", null, true]}",
                PyJson.dumps(tool(), null));
    }

    private static Map<String, Object> tool() {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("name", "f");
        m.put("args", java.util.Arrays.asList(1L, "é\n", null, true));
        return m;
    }

    @Test
    void strftimeNowWritesTodaysDate() {
        // the date is read before and after, so a render across midnight still has one to match
        String before = java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy", java.util.Locale.ENGLISH));
        String got = render("{{ strftime_now('%d %b %Y') }}", Map.of());
        String after = java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy", java.util.Locale.ENGLISH));
        assertTrue(got.equals(before) || got.equals(after), got);
    }

    @Test
    void endOfTurnIsWhatFollowsAnAssistantTurn() {
        String t = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
        assertEquals("<|end|>", ChatTemplate.of(t, "t", Map.of()).endOfTurn());
    }

    @Test
    void aTemplatesRaiseExceptionFailsNamingTheTemplate() {
        String t = "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok";
        ChatTemplate ct = ChatTemplate.of(t, "x/tokenizer_config.json: key chat_template", Map.of());
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> ct.render(List.of(new ChatTemplate.Message("system", "s")), true, Map.of()));
        assertTrue(e.getMessage().startsWith("x/tokenizer_config.json: key chat_template: the chat template does not render")
                && e.getMessage().contains("System role not supported"), e.getMessage());
    }

    @Test
    void badTemplatesAreRefusedAtLoadNamingFileAndKey() throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}{{ m.content }}\"}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> ChatTemplate.fromCheckpoint(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json") + ": key chat_template: "), e.getMessage());

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"{{ messages[0].content | no_such_filter }}\"}");
        e = assertThrows(CheckpointException.class, () -> ChatTemplate.fromCheckpoint(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json") + ": key chat_template: ")
                && e.getMessage().contains("no_such_filter"), e.getMessage());

        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": 7}");
        e = assertThrows(CheckpointException.class, () -> ChatTemplate.fromCheckpoint(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json") + ": key chat_template: expected"), e.getMessage());
    }

    @Test
    void theJinjaFileComesBeforeTheConfigKey() throws IOException {
        assertTrue(ChatTemplate.fromCheckpoint(dir).isEmpty());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"config {{ messages[0].content }}\", \"eos_token\": \"</s>\"}");
        ChatTemplate.Message hi = new ChatTemplate.Message("user", "hi");
        assertEquals("config hi", ChatTemplate.fromCheckpoint(dir).orElseThrow().render(List.of(hi), true, Map.of()));
        // one trailing newline of the file is dropped, as Jinja does; special tokens are variables
        Files.writeString(dir.resolve("chat_template.jinja"), "file {{ messages[0].content }}{{ eos_token }}\n");
        assertEquals("file hi</s>", ChatTemplate.fromCheckpoint(dir).orElseThrow().render(List.of(hi), true, Map.of()));
    }

    @Test
    void chatFormatChoicesAndTheirRefusals() throws IOException {
        assertTrue(ChatFormat.choose(ChatFormat.Mode.AUTO, dir, true, null, null).isEmpty());
        IllegalArgumentException on = assertThrows(IllegalArgumentException.class,
                () -> ChatFormat.choose(ChatFormat.Mode.ON, dir, true, null, null));
        assertTrue(on.getMessage().startsWith("chat-template: on, but checkpoint " + dir + " has no chat template"), on.getMessage());
        Files.writeString(dir.resolve("chat_template.jinja"),
                "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
        assertEquals("[system]S[user]Q[assistant]",
                ChatFormat.choose(ChatFormat.Mode.AUTO, dir, true, "S", null).orElseThrow().render("Q"));
        assertTrue(ChatFormat.choose(ChatFormat.Mode.AUTO, dir, false, null, null).isEmpty());
        assertTrue(ChatFormat.choose(ChatFormat.Mode.ON, dir, false, null, null).isPresent());
        IllegalArgumentException sys = assertThrows(IllegalArgumentException.class,
                () -> ChatFormat.choose(ChatFormat.Mode.OFF, dir, true, "S", null));
        assertEquals("system-prompt: no chat template applies (chat-template is off)", sys.getMessage());
        assertEquals("The answer is 4.", ChatFormat.answer("<think>\n2+2\n</think>\n\nThe answer is 4."));
    }
}
