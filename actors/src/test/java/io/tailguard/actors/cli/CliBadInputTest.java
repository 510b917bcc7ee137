package io.tailguard.actors.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every kind of broken checkpoint: exit code 2 and one line naming the file and the tensor or key. */
public class CliBadInputTest {
    @TempDir
    static Path tmp;
    static Path good;

    /** A CLI run's exit code and captured output (shared by every command test). */
    public record Run(int code, String out, String err) {}

    public static Run cli(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @BeforeAll
    static void makeCheckpoint() {
        good = tmp.resolve("good");
        Run r = cli("init-model", "--preset", "tiny", "--out", good.toString(), "--json");
        assertEquals(0, r.code(), r.err());
    }

    static Path copy(String name) throws IOException {
        Path dst = tmp.resolve(name);
        try (Stream<Path> files = Files.list(good)) {
            Files.createDirectories(dst);
            for (Path f : files.toList()) {
                Files.copy(f, dst.resolve(f.getFileName()));
            }
        }
        return dst;
    }

    /** Removes the manifest so that a deliberately damaged file reaches its own validation. */
    static Path copyWithoutManifest(String name) throws IOException {
        Path dst = copy(name);
        Files.delete(dst.resolve("manifest.json"));
        return dst;
    }

    static Run generate(Path ckpt) {
        return cli("generate", "--checkpoint", ckpt.toString(), "--prompt-ids", "5,6,7", "--max-new", "2", "--json");
    }

    static void assertBadInput(Run r, String... mustContain) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        String err = r.err().strip();
        assertFalse(err.contains("\n"), "one line expected, got: " + err);
        for (String s : mustContain) {
            assertTrue(err.contains(s), "'" + err + "' should name " + s);
        }
        assertFalse(err.contains("Exception"), "no stack trace or class names: " + err);
    }

    static void rewriteHeader(Path st, String from, String to) throws IOException {
        byte[] bytes = Files.readAllBytes(st);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.contains(from), "fixture header lacks " + from);
        String changed = header.replace(from, to);
        assertEquals(header.length(), changed.length(), "keep the header length");
        System.arraycopy(changed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, (int) n);
        Files.write(st, bytes);
    }

    @Test
    void aGoodCheckpointGenerates() {
        Run r = generate(good);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().strip().lines().reduce((a, b) -> b).orElseThrow().startsWith("{\"prompt_ids\":[5,6,7]"));
    }

    @Test
    void missingConfig() throws IOException {
        Path d = copyWithoutManifest("no-config");
        Files.delete(d.resolve("config.json"));
        assertBadInput(generate(d), "config.json");
    }

    @Test
    void malformedConfig() throws IOException {
        Path d = copyWithoutManifest("bad-config");
        Files.writeString(d.resolve("config.json"), "{\"vocab_size\": 99, \"hidden_size\": ");
        assertBadInput(generate(d), "config.json");
    }

    @Test
    void configWithAWrongValueNamesTheKey() throws IOException {
        Path d = copyWithoutManifest("bad-key");
        String c = Files.readString(d.resolve("config.json")).replaceFirst("\"num_key_value_heads\"\\s*:\\s*2", "\"num_key_value_heads\": 3");
        Files.writeString(d.resolve("config.json"), c);
        assertBadInput(generate(d), "config.json", "num_key_value_heads");
    }

    @Test
    void truncatedSafetensors() throws IOException {
        Path d = copyWithoutManifest("truncated");
        Path st = d.resolve("model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(st.toFile(), "rw")) {
            f.setLength(f.length() - 1000);
        }
        assertBadInput(generate(d), "model.safetensors", "model.");
    }

    @Test
    void headerWhoseOffsetsLie() throws IOException {
        Path d = copyWithoutManifest("lying-offsets");
        Path st = d.resolve("model.safetensors");
        // model.norm.weight is [128] F32: 512 bytes. Claim a different end offset of the same width.
        byte[] bytes = Files.readAllBytes(st);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        java.util.regex.Matcher m = java.util.regex.Pattern
                .compile("\"model\\.norm\\.weight\":\\{[^}]*\"data_offsets\":\\[(\\d+),(\\d+)\\]").matcher(header);
        assertTrue(m.find(), header.substring(0, Math.min(300, header.length())));
        String end = m.group(2);
        String replaced = header.substring(0, m.start(2)) + pad(Long.parseLong(end) - 4, end.length()) + header.substring(m.end(2));
        System.arraycopy(replaced.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, (int) n);
        Files.write(st, bytes);
        assertBadInput(generate(d), "model.safetensors", "model.norm.weight");
    }

    private static String pad(long v, int width) {
        String s = String.valueOf(v);
        return s.length() < width ? s + " ".repeat(width - s.length()) : s;
    }

    @Test
    void missingTensor() throws IOException {
        Path d = copyWithoutManifest("missing-tensor");
        rewriteHeader(d.resolve("model.safetensors"), "model.layers.2.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weighx");
        assertBadInput(generate(d), "model.safetensors", "model.layers.2.mlp.up_proj.weight");
    }

    @Test
    void shapeMismatch() throws IOException {
        Path d = copyWithoutManifest("shape");
        String c = Files.readString(d.resolve("config.json")).replaceFirst("\"intermediate_size\"\\s*:\\s*384", "\"intermediate_size\": 320");
        Files.writeString(d.resolve("config.json"), c);
        assertBadInput(generate(d), "model.safetensors", "mlp.");
    }

    @Test
    void unsupportedDtype() throws IOException {
        Path d = copyWithoutManifest("dtype");
        rewriteHeader(d.resolve("model.safetensors"), "\"dtype\":\"F32\"", "\"dtype\":\"I32\"");
        assertBadInput(generate(d), "model.safetensors", "I32");
    }

    @Test
    void sha256Mismatch() throws IOException {
        Path d = copy("tampered");
        Path st = d.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(st);
        bytes[bytes.length - 3] ^= 0x40;
        Files.write(st, bytes);
        assertBadInput(generate(d), "model.safetensors", "sha256");
    }

    @Test
    void failedWriteLeavesTheCompleteCheckpoint() throws IOException {
        Path d = copy("keep-me");
        byte[] before = Files.readAllBytes(d.resolve("model.safetensors"));
        Run r = cli("init-model", "--preset", "nonexistent", "--out", d.toString());
        assertEquals(2, r.code());
        Run r2 = cli("init-model", "--preset", "tiny", "--dtype", "F8", "--out", d.toString());
        assertEquals(2, r2.code());
        assertArrayEquals(before, Files.readAllBytes(d.resolve("model.safetensors")));
        assertEquals(0, generate(d).code());
        try (Stream<Path> siblings = Files.list(tmp)) {
            assertTrue(siblings.noneMatch(p -> p.getFileName().toString().contains("keep-me") && !p.equals(d)),
                    "no temporary or backup directory left beside the checkpoint");
        }
    }

    @Test
    void aCheckpointWithoutTokenizerWorksWithPromptIdsOnly() throws IOException {
        Path d = copyWithoutManifest("no-tokenizer");
        Files.delete(d.resolve("tokenizer.json"));
        Run ok = generate(d);
        assertEquals(0, ok.code(), ok.err());
        assertFalse(ok.out().contains("\"text\""));
        Run text = cli("generate", "--checkpoint", d.toString(), "--prompt", "a=1", "--max-new", "2");
        assertBadInput(text, "tokenizer.json", "--prompt-ids");
    }

    @Test
    void theDeviceComesFromTheConfigurationUnlessGiven() throws IOException {
        Path conf = tmp.resolve("device.conf");
        Files.writeString(conf, "tailguard.model.device = \"tpu:7\"\n");
        System.setProperty("tailguard.config", conf.toString());
        try {
            assertBadInput(generate(good), "device", "tpu:7");
            Run explicit = cli("generate", "--checkpoint", good.toString(), "--prompt-ids", "5", "--max-new", "1", "--device", "cpu");
            assertEquals(0, explicit.code(), explicit.err());
        } finally {
            System.clearProperty("tailguard.config");
        }
    }

    @Test
    void everyCommandHasHelp() {
        for (String[] c : new String[][] {{"--help"}, {"init-model", "--help"}, {"generate", "--help"}}) {
            Run r = cli(c);
            assertEquals(0, r.code(), String.join(" ", c));
            assertTrue(r.out().contains("Usage:"), String.join(" ", c));
        }
    }

    @Test
    void kubernetesApiBootstrapWithSeedNodesOrWithoutManagementIsBadInput() {
        Path cluster = io.tailguard.actors.runtime.DeploymentFilesTest.repoRoot().resolve("config/cluster.conf");
        assertBadInput(cli("node", "--config", cluster.toString(), "--roles", "rollout",
                "--set", "tailguard.cluster.bootstrap=kubernetes-api", "--set", "tailguard.management.enabled=on"),
                "pekko.cluster.seed-nodes: must be empty with tailguard.cluster.bootstrap = kubernetes-api");
        assertBadInput(cli("node", "--config", cluster.toString(), "--roles", "rollout",
                "--set", "tailguard.cluster.bootstrap=kubernetes-api", "--set", "pekko.cluster.seed-nodes=[]"),
                "tailguard.management.enabled: must be on");
    }

    @Test
    void unknownOptionIsBadInput() {
        Run r = cli("generate", "--checkpoint", good.toString(), "--max-new", "2", "--prompt-ids", "1", "--bogus");
        assertEquals(2, r.code());
    }

    @Test
    void stopIdOutsideVocabularyIsBadInput() {
        Run r = cli("generate", "--checkpoint", good.toString(), "--max-new", "2", "--prompt-ids", "1", "--stop-ids", "3,5000");
        assertBadInput(r, "--stop-ids", "5000");
        assertBadInput(cli("generate", "--checkpoint", good.toString(), "--max-new", "2", "--prompt-ids", "1", "--stop-ids", "-1"),
                "--stop-ids", "-1");
    }

    @Test
    void configKeysThatSwitchOnWhatIsNotImplementedNameTheKey() throws IOException {
        String[][] cases = {
                {"\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 4.0}", "rope_scaling.rope_type"},
                {"\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2.0}", "rope_parameters.rope_type"},
                {"\"use_sliding_window\": true, \"sliding_window\": 64, \"max_window_layers\": 1", "use_sliding_window"},
                {"\"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\", \"full_attention\"]", "layer_types"},
                {"\"attention_bias\": true, \"x\": 0", "attention_bias"}};
        for (String[] c : cases) {
            Path d = copyWithoutManifest("cfg-" + c[1].replace('.', '-'));
            String config = Files.readString(d.resolve("config.json"));
            // the written config states attention_bias false; drop it so the case decides
            config = config.replaceFirst("\"attention_bias\"\\s*:\\s*false,", "").replaceFirst("\\{", "{" + c[0] + ",");
            Files.writeString(d.resolve("config.json"), config);
            assertBadInput(generate(d), "config.json", c[1]);
        }
    }

    @Test
    void aWeightThatIsNotFiniteIsBadInputNamingTheTensor() {
        var loaded = io.tailguard.model.io.CheckpointDir.read(good);
        java.util.Map<String, io.tailguard.model.io.HostTensor> w = new java.util.TreeMap<>(loaded.tensors());
        float[] v = w.get("model.layers.1.self_attn.o_proj.weight").toFloats();
        v[7] = Float.POSITIVE_INFINITY;
        w.put("model.layers.1.self_attn.o_proj.weight", io.tailguard.model.io.HostTensor.ofFloats(
                w.get("model.layers.1.self_attn.o_proj.weight").shape(), v, io.tailguard.model.io.DType.F32));
        Path d = tmp.resolve("infinite");
        io.tailguard.model.io.CheckpointDir.write(d, loaded.config(), w, io.tailguard.model.io.DType.BF16,
                loaded.tokenizerJson().orElse(null), java.util.Map.of(), 1, null, 0, 0);
        assertBadInput(generate(d), "model.safetensors", "model.layers.1.self_attn.o_proj.weight", "not finite");
    }

    @Test
    void promptIdOutsideVocabularyIsBadInput() {
        Run r = cli("generate", "--checkpoint", good.toString(), "--max-new", "2", "--prompt-ids", "1,5000");
        assertBadInput(r, "5000");
    }
}
