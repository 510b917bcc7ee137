package io.tailguard.compression;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VnmCheckpointTest {
    @TempDir
    Path tmp;

    @Test
    void roundTripReproducesMasksValuesAndLogitsAndPacksToTheFormatsSize() throws Exception {
        List<int[]> calib = TinyModels.sequences(4, 24, 1);
        try (Qwen3Model model = TinyModels.model(3)) {
            for (VnmPattern p : new VnmPattern[] {new VnmPattern(16, 2, 5), new VnmPattern(32, 2, 8), VnmPattern.TWO_FOUR}) {
                VnmModel s = VnmPruner.prune(model, calib, p, VnmPruner.Score.ACTIVATION,
                        p.isTwoFour() ? VnmPruner.PermutationOptions.off() : new VnmPruner.PermutationOptions(true, 5, 3, 128), 3);
                Path dir = tmp.resolve("s" + p.m());
                VnmCheckpoint.write(dir, s, "{\"type\":\"x\"}", 1, "parent");
                VnmModel back = VnmCheckpoint.read(dir);
                assertEquals(p, back.pattern());
                assertEquals(s.linears().keySet(), back.linears().keySet());
                long expected = 0;
                for (SparseLinear l : s.linears().values()) {
                    SparseLinear b = back.linears().get(l.name());
                    assertArrayEquals(l.mask().columns(), b.mask().columns(), l.name());
                    assertArrayEquals(l.mask().picks(), b.mask().picks(), l.name());
                    assertArrayEquals(l.values(), b.values(), l.name());
                    // 4 bytes per kept value, 2 bits of 2:4 index per kept value, and for M > 4 four
                    // offsets of ceil(log2 M) bits (3 for M = 5 and M = 8) per V x M block.
                    long blocks = (long) l.mask().rows() / p.v() * l.mask().columnBlocks();
                    long kept = 2L * l.mask().rows() * l.mask().columnBlocks();
                    expected += 4 * kept + (kept * 2 + 7) / 8 + (p.isTwoFour() ? 0 : (blocks * 4 * 3 + 7) / 8);
                }
                for (String k : s.permutations().keySet()) {
                    for (int g = 0; g < s.permutations().get(k).length; g++) {
                        assertArrayEquals(s.permutations().get(k)[g], back.permutations().get(k)[g]);
                    }
                }
                float[] direct = logits(s.toModel(Device.cpu()));
                assertArrayEquals(direct, logits(back.toModel(Device.cpu())), 0f);

                Path exported = tmp.resolve("dense" + p.m());
                DenseExport.write(exported, back, null);
                assertArrayEquals(direct, logits(ModelLoader.load(exported, Device.cpu())), 0f);

                long onDisk = Files.size(dir.resolve(VnmCheckpoint.SPARSE_TENSORS));
                assertTrue(onDisk >= expected && onDisk < expected + 8_192, "on disk " + onDisk + " expected ~" + expected);
                System.out.printf("%s: %d bytes, %.3f of float32%n", p, onDisk, (double) onDisk / s.float32LinearBytes());
                assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")));
            }
        }
    }

    @Test
    void aCorruptedFileIsRefusedOnLoadAndAFailedWriteLeavesTheOldCheckpoint() throws Exception {
        try (Qwen3Model model = TinyModels.model(3)) {
            VnmPattern p = new VnmPattern(16, 2, 5);
            VnmModel s = VnmPruner.prune(model, null, p, VnmPruner.Score.MAGNITUDE, VnmPruner.PermutationOptions.off(), 1);
            Path dir = tmp.resolve("s");
            VnmCheckpoint.write(dir, s, null, 1, null);
            byte[] before = Files.readAllBytes(dir.resolve(VnmCheckpoint.SPARSE_TENSORS));
            // A write that fails half-way (the sparse tensors are written, then a dense tensor of the
            // wrong length is refused) leaves the checkpoint that was there untouched.
            java.util.Map<String, float[]> dense = new java.util.LinkedHashMap<>(s.dense());
            dense.put("model.norm.weight", new float[3]);
            VnmModel broken = new VnmModel(s.config(), p, s.linears(), dense, s.permutations());
            assertThrows(IllegalArgumentException.class, () -> VnmCheckpoint.write(dir, broken, null, 2, null));
            assertArrayEquals(before, Files.readAllBytes(dir.resolve(VnmCheckpoint.SPARSE_TENSORS)));
            assertEquals(1, VnmCheckpoint.read(dir).linears().size() / (7 * s.config().numLayers()));

            Path f = dir.resolve(VnmCheckpoint.SPARSE_TENSORS);
            byte[] b = before.clone();
            b[b.length - 1] ^= 1;
            Files.write(f, b);
            assertThrows(RuntimeException.class, () -> VnmCheckpoint.read(dir));
        }
    }

    private static float[] logits(Qwen3Model m) {
        try (m; NDManager s = m.manager().newSubManager()) {
            int[] seq = TinyModels.sequences(1, 20, 77).get(0);
            long[] ids = new long[seq.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = seq[i];
            }
            return m.forward(s.create(ids, new Shape(1, ids.length))).toFloatArray();
        }
    }
}
