package io.tailguard.model.io;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointDirTest {

    @TempDir
    Path root;

    private final ModelConfig tied = Fixtures.tiny(true);
    private final ModelConfig untied = Fixtures.tiny(false);

    private Path writeDefault(Path dir, ModelConfig c, long seed) {
        CheckpointDir.write(dir, c, Fixtures.weights(c, seed), DType.F32, "{\"type\":\"x\"}",
                Map.of("trainer-state.json", "{}".getBytes(StandardCharsets.UTF_8)), 3, "v000002", 300, 1);
        return dir;
    }

    private List<String> siblings() throws IOException {
        try (Stream<Path> s = Files.list(root)) {
            return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    private static void assertNames(CheckpointException e, Path file, String what) {
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void requiredNamesFollowHuggingFaceAndLmHeadOnlyWhenUntied() {
        List<String> t = CheckpointDir.requiredTensorNames(tied);
        assertEquals(1 + 2 * 11 + 1, t.size());
        assertEquals("model.embed_tokens.weight", t.get(0));
        assertTrue(t.contains("model.layers.1.self_attn.k_norm.weight"));
        assertFalse(t.contains("lm_head.weight"));
        assertTrue(CheckpointDir.requiredTensorNames(untied).contains("lm_head.weight"));
    }

    @Test
    void expectedShapesFollowTheConfig() {
        // V=16 H=8 I=12 heads=2 kv=1 head_dim=4
        assertArrayEquals(new long[] {16, 8}, CheckpointDir.expectedShape(tied, "model.embed_tokens.weight"));
        assertArrayEquals(new long[] {8, 8}, CheckpointDir.expectedShape(tied, "model.layers.0.self_attn.q_proj.weight"));
        assertArrayEquals(new long[] {4, 8}, CheckpointDir.expectedShape(tied, "model.layers.1.self_attn.v_proj.weight"));
        assertArrayEquals(new long[] {8, 8}, CheckpointDir.expectedShape(tied, "model.layers.1.self_attn.o_proj.weight"));
        assertArrayEquals(new long[] {4}, CheckpointDir.expectedShape(tied, "model.layers.0.self_attn.q_norm.weight"));
        assertArrayEquals(new long[] {12, 8}, CheckpointDir.expectedShape(tied, "model.layers.0.mlp.up_proj.weight"));
        assertArrayEquals(new long[] {8, 12}, CheckpointDir.expectedShape(tied, "model.layers.0.mlp.down_proj.weight"));
        assertArrayEquals(new long[] {8}, CheckpointDir.expectedShape(tied, "model.norm.weight"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointDir.expectedShape(tied, "model.layers.2.mlp.up_proj.weight"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointDir.expectedShape(tied, "model.layers.0.mlp.sideways.weight"));
    }

    @Test
    void writeThenReadReturnsTheSameCheckpoint() throws IOException {
        Path dir = writeDefault(root.resolve("v000003"), untied, 1);
        CheckpointDir.Loaded l = CheckpointDir.read(dir);
        assertEquals(untied, l.config());
        assertEquals(Fixtures.weights(untied, 1), l.tensors());
        assertEquals("{\"type\":\"x\"}", l.tokenizerJson().orElseThrow());
        Manifest m = l.manifest().orElseThrow();
        assertEquals(3, m.version());
        assertEquals("v000002", m.parent());
        assertEquals(300, m.step());
        assertEquals(1, m.scheduleVersion());
        assertEquals(List.of("config.json", "model.safetensors", "tokenizer.json", "trainer-state.json"),
                List.copyOf(m.sha256().keySet()));
        assertEquals(List.of("v000003"), siblings(), "no temporary directory left behind");
    }

    @Test
    void storingAsBf16ConvertsEveryTensor() {
        Path dir = root.resolve("ck");
        Map<String, HostTensor> w = Fixtures.weights(tied, 2);
        CheckpointDir.write(dir, tied, w, DType.BF16, null, Map.of(), 1, null, 0, 0);
        CheckpointDir.Loaded l = CheckpointDir.read(dir);
        assertTrue(l.tokenizerJson().isEmpty());
        for (Map.Entry<String, HostTensor> e : l.tensors().entrySet()) {
            assertEquals(DType.BF16, e.getValue().dtype());
            assertEquals(w.get(e.getKey()).convertTo(DType.BF16), e.getValue());
        }
        assertTrue(ConfigJson.toJson(tied, DType.BF16).contains("bfloat16"));
    }

    @Test
    void huggingFaceCheckpointWithoutManifestLoads() throws IOException {
        Path dir = Files.createDirectory(root.resolve("hf"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, DType.F32));
        Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(tied, 3));
        w.put("lm_head.weight", w.get("model.embed_tokens.weight"));  // some exports keep it even when tied
        SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        CheckpointDir.Loaded l = CheckpointDir.read(dir);
        assertTrue(l.manifest().isEmpty());
        assertEquals(w.size(), l.tensors().size());
    }

    @Test
    void shardedHuggingFaceCheckpointLoadsThroughItsIndex() throws IOException {
        Path dir = Files.createDirectory(root.resolve("sharded"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, DType.F32));
        Map<String, HostTensor> w = Fixtures.weights(tied, 4);
        Map<String, HostTensor> a = new TreeMap<>();
        Map<String, HostTensor> b = new TreeMap<>();
        StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
        for (String name : w.keySet()) {
            boolean first = name.contains("layers.0") || name.contains("embed");
            (first ? a : b).put(name, w.get(name));
            index.append('"').append(name).append("\":\"").append(first ? "s-1.safetensors" : "s-2.safetensors").append("\",");
        }
        index.setLength(index.length() - 1);
        index.append("}}");
        SafeTensors.write(dir.resolve("s-1.safetensors"), a, Map.of());
        SafeTensors.write(dir.resolve("s-2.safetensors"), b, Map.of());
        Files.writeString(dir.resolve(CheckpointDir.WEIGHTS_INDEX), index);
        assertEquals(w, CheckpointDir.read(dir).tensors());
    }

    @Test
    void aWeightThatIsNotFiniteIsNamedInEveryDtype() throws IOException {
        float[][] bad = {{Float.NaN}, {Float.POSITIVE_INFINITY}, {Float.NEGATIVE_INFINITY}};
        for (DType dtype : DType.values()) {
            for (float[] value : bad) {
                Path dir = root.resolve("nonfinite-" + dtype + "-" + value[0]);
                Files.createDirectory(dir);
                Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, dtype));
                Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(tied, 7));
                float[] v = new float[12 * 8];
                v[41] = value[0];
                w.put("model.layers.1.mlp.gate_proj.weight", HostTensor.ofFloats(new long[] {12, 8}, v, dtype));
                SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of());
                CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir));
                assertNames(e, dir.resolve("model.safetensors"), "tensor model.layers.1.mlp.gate_proj.weight: holds a value that is not finite ("
                        + value[0] + " at flat index 41)");
            }
        }
        // the largest finite values of each dtype load
        Path dir = Files.createDirectory(root.resolve("largest"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, DType.F16));
        Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(tied, 7));
        w.put("model.norm.weight", HostTensor.ofFloats(new long[] {8}, new float[] {65504f, -65504f, 1, 1, 1, 1, 1, 1}, DType.F16));
        w.put("model.layers.0.input_layernorm.weight",
                HostTensor.ofFloats(new long[] {8}, new float[] {Float.MAX_VALUE, -Float.MAX_VALUE, 1, 1, 1, 1, 1, 1}, DType.F32));
        SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of());
        assertEquals(65504f, CheckpointDir.read(dir).tensors().get("model.norm.weight").toFloats()[0]);
    }

    @Test
    void aShardedWeightThatIsNotFiniteNamesItsShard() throws IOException {
        Path dir = Files.createDirectory(root.resolve("sharded-nan"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, DType.BF16));
        Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(tied, 4));
        w.put("model.norm.weight", HostTensor.ofFloats(new long[] {8}, new float[] {1, 1, 1, Float.NaN, 1, 1, 1, 1}, DType.BF16));
        Map<String, HostTensor> a = new TreeMap<>();
        Map<String, HostTensor> b = new TreeMap<>();
        StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
        for (String name : w.keySet()) {
            boolean first = name.contains("layers.0");
            (first ? a : b).put(name, w.get(name));
            index.append('"').append(name).append("\":\"").append(first ? "s-1.safetensors" : "s-2.safetensors").append("\",");
        }
        index.setLength(index.length() - 1);
        index.append("}}");
        SafeTensors.write(dir.resolve("s-1.safetensors"), a, Map.of());
        SafeTensors.write(dir.resolve("s-2.safetensors"), b, Map.of());
        Files.writeString(dir.resolve(CheckpointDir.WEIGHTS_INDEX), index);
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir));
        assertNames(e, dir.resolve("s-2.safetensors"), "tensor model.norm.weight: holds a value that is not finite (NaN at flat index 3)");
    }

    @Test
    void missingDirectory() {
        Path dir = root.resolve("nope");
        assertNames(assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir)), dir, "does not exist");
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path dir = Files.createDirectory(root.resolve("hf"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(untied, DType.F32));
        Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(untied, 5));
        w.remove("lm_head.weight");
        SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of());
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir));
        assertNames(e, dir.resolve("model.safetensors"), "tensor lm_head.weight: missing");
    }

    @Test
    void shapeMismatchIsNamed() throws IOException {
        Path dir = Files.createDirectory(root.resolve("hf"));
        Files.writeString(dir.resolve("config.json"), ConfigJson.toJson(tied, DType.F32));
        Map<String, HostTensor> w = new TreeMap<>(Fixtures.weights(tied, 6));
        w.put("model.layers.0.mlp.up_proj.weight", HostTensor.ofFloats(new long[] {12, 7}, new float[84], DType.F32));
        SafeTensors.write(dir.resolve("model.safetensors"), w, Map.of());
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir));
        assertNames(e, dir.resolve("model.safetensors"),
                "tensor model.layers.0.mlp.up_proj.weight: shape [12, 7] expected [12, 8]");
    }

    @Test
    void tamperedWeightsAreRefusedByTheManifest() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 7);
        Path weights = dir.resolve("model.safetensors");
        byte[] b = Files.readAllBytes(weights);
        b[b.length - 1] ^= 0x10;  // a weight byte: the header stays valid, only the hash can tell
        Files.write(weights, b);
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointDir.read(dir));
        assertNames(e, weights, "sha256");
    }

    @Test
    void rewritingReplacesTheOldCheckpointCompletely() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 8);
        Files.writeString(dir.resolve("stray.txt"), "from the old one");
        CheckpointDir.write(dir, tied, Fixtures.weights(tied, 9), DType.F16, null, Map.of(), 4, "ck", 400, 1);
        CheckpointDir.Loaded l = CheckpointDir.read(dir);
        assertEquals(4, l.manifest().orElseThrow().version());
        assertFalse(Files.exists(dir.resolve("stray.txt")));
        assertEquals(List.of("ck"), siblings());
    }

    @Test
    void failedWriteOfAnUncreatableExtraFileLeavesTheOldCheckpointByteIdentical() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 10);
        Map<String, byte[]> before = Fixtures.snapshot(dir);
        // 300 bytes exceeds every common file system's name limit: fails after the weights are written.
        Map<String, byte[]> extras = Map.of("x".repeat(300), new byte[] {1});
        assertThrows(UncheckedIOException.class, () -> CheckpointDir.write(dir, tied, Fixtures.weights(tied, 11),
                DType.F32, null, extras, 4, "ck", 400, 1));
        assertEquals(List.of("ck"), siblings(), "temporary directory removed");
        Map<String, byte[]> after = Fixtures.snapshot(dir);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k));
        CheckpointDir.read(dir);
    }

    @Test
    void invalidInputIsRefusedBeforeTouchingTheDisk() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 12);
        Map<String, byte[]> before = Fixtures.snapshot(dir);
        Map<String, HostTensor> wrong = new TreeMap<>(Fixtures.weights(tied, 13));
        wrong.put("model.norm.weight", HostTensor.ofFloats(new long[] {9}, new float[9], DType.F32));
        assertThrows(IllegalArgumentException.class,
                () -> CheckpointDir.write(dir, tied, wrong, DType.F32, null, Map.of(), 4, null, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> CheckpointDir.write(dir, tied, Fixtures.weights(tied, 13),
                DType.F32, null, Map.of("manifest.json", new byte[0]), 4, null, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> CheckpointDir.write(dir, tied, Fixtures.weights(tied, 13),
                DType.F32, null, Map.of("../escape", new byte[0]), 4, null, 0, 0));
        assertEquals(List.of("ck"), siblings());
        Map<String, byte[]> after = Fixtures.snapshot(dir);
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k));
    }

    /** What a process killed between the two renames of a rewrite leaves: the complete old one moved aside. */
    private Path movedAside(Path dir, long stamp) throws IOException {
        Path old = root.resolve("." + dir.getFileName() + ".old-" + stamp);
        Files.move(dir, old);
        return old;
    }

    /** What a process killed while filling the temporary directory leaves: a partial checkpoint, no manifest. */
    private Path unfinished(String name, String suffix) throws IOException {
        Path tmp = Files.createDirectory(root.resolve("." + name + ".tmp-" + suffix));
        Files.write(tmp.resolve(CheckpointDir.WEIGHTS), new byte[] {1, 2, 3});
        return tmp;
    }

    @Test
    void aCheckpointMovedAsideByACrashIsMovedBackBeforeTheNextWrite() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 14);
        Map<String, byte[]> before = Fixtures.snapshot(dir);
        movedAside(dir, 123456789L);
        unfinished("ck", "987654321");
        CheckpointDir.recoverLeftovers(dir);
        assertEquals(List.of("ck"), siblings());
        Map<String, byte[]> after = Fixtures.snapshot(dir);
        assertEquals(before.keySet(), after.keySet());
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k));
        assertEquals(3, CheckpointDir.read(dir).manifest().orElseThrow().version());
    }

    @Test
    void anAsideCopyIsDroppedWhenTheNewCheckpointLanded() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 15);
        Path staging = root.resolve("staging");
        CheckpointDir.write(staging, tied, Fixtures.weights(tied, 16), DType.F32, null, Map.of(), 4, "ck", 400, 1);
        movedAside(dir, -42L);  // nanoTime may be negative
        Files.move(staging, dir);  // the second rename happened, the delete did not
        CheckpointDir.recoverLeftovers(dir);
        assertEquals(List.of("ck"), siblings());
        assertEquals(4, CheckpointDir.read(dir).manifest().orElseThrow().version());
    }

    @Test
    void theNextWriteTidiesEveryLeftoverInItsParentAndLeavesOtherNamesAlone() throws IOException {
        Path dir = writeDefault(root.resolve("v000001"), tied, 17);
        Path other = writeDefault(root.resolve("v000002"), tied, 18);
        movedAside(other, 7L);
        unfinished("v000003", "5550001");
        Files.createDirectory(root.resolve(".v000004.tmp-notanumber"));  // not a name a write gives
        Files.writeString(root.resolve("notes.tmp-1"), "not a leftover");
        CheckpointDir.write(root.resolve("v000005"), tied, Fixtures.weights(tied, 19), DType.F32, null, Map.of(), 5, null, 500, 1);
        assertEquals(List.of(".v000004.tmp-notanumber", "notes.tmp-1", "v000001", "v000002", "v000005"), siblings());
        assertEquals(3, CheckpointDir.read(other).manifest().orElseThrow().version());
        CheckpointDir.read(dir);
    }

    @Test
    void recoveringWithNothingLeftOverChangesNothing() throws IOException {
        Path dir = writeDefault(root.resolve("ck"), tied, 20);
        CheckpointDir.recoverLeftovers(dir);
        CheckpointDir.recoverLeftovers(root.resolve("missing").resolve("ck"));  // parent absent: nothing to do
        assertEquals(List.of("ck"), siblings());
    }
}
