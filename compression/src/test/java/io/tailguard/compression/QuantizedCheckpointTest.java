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
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QuantizedCheckpointTest {
    @TempDir
    Path tmp;

    @Test
    void codesPackAndUnpackAtEveryWidth() {
        SplittableRandom rng = new SplittableRandom(4);
        for (int bits = 1; bits <= 8; bits++) {
            byte[] codes = new byte[1001];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) rng.nextInt(1 << bits);
            }
            byte[] packed = PackedCodes.pack(codes, bits);
            assertEquals((1001L * bits + 7) / 8, packed.length);
            assertArrayEquals(codes, PackedCodes.unpack(packed, codes.length, bits));
        }
    }

    @Test
    void roundTripReproducesCodesAndLogitsAndPacksToBitsOverEight() throws Exception {
        List<int[]> calib = TinyModels.sequences(4, 32, 1);
        try (Qwen3Model model = TinyModels.model(3)) {
            for (int bits : new int[] {2, 3, 4}) {
                QuantizedModel q = YaqaQuantizer.quantize(model, calib, bits, Method.YAQA_B, 17);
                Path dir = tmp.resolve("q" + bits);
                QuantizedCheckpoint.write(dir, q, 1, null);
                QuantizedModel back = QuantizedCheckpoint.read(dir);
                assertEquals(q.linears().keySet(), back.linears().keySet());
                for (QuantizedLinear l : q.linears().values()) {
                    QuantizedLinear b = back.linears().get(l.name());
                    assertArrayEquals(l.codes(), b.codes(), l.name());
                    assertArrayEquals(l.steps(), b.steps(), l.name());
                    assertArrayEquals(l.signsIn(), b.signsIn());
                    assertArrayEquals(l.signsOut(), b.signsOut());
                }
                float[] direct = logits(q.toModel(Device.cpu()));
                assertArrayEquals(direct, logits(back.toModel(Device.cpu())), 0f);

                Path exported = tmp.resolve("dq" + bits);
                DenseExport.write(exported, back, null);
                assertArrayEquals(direct, logits(ModelLoader.load(exported, Device.cpu())), 0f);

                // Bytes: codes at bits/8 per weight, 2 bytes per group of 32, a bit per sign, plus a JSON header.
                long weights = 0;
                long expected = 0;
                for (QuantizedLinear l : q.linears().values()) {
                    long n = (long) l.rows() * l.cols();
                    weights += n;
                    expected += n * bits / 8 + 2L * l.rows() * (l.cols() / 32) + (l.rows() + l.cols()) / 8;
                }
                long onDisk = Files.size(dir.resolve(QuantizedCheckpoint.QUANT_TENSORS));
                assertEquals(expected, q.packedLinearBytes());
                assertTrue(onDisk >= expected && onDisk < expected + 16_384, "on disk " + onDisk + " expected ~" + expected);
                double ratio = (double) onDisk / (4.0 * weights);
                System.out.printf("packed %d bits: %d bytes for %d weights = %.3f of float32%n", bits, onDisk, weights, ratio);
                if (bits == 4) {
                    assertTrue(ratio <= 0.3, "4-bit ratio " + ratio);
                }
            }
        }
    }

    @Test
    void aCorruptedFileIsRefusedOnLoad() throws Exception {
        try (Qwen3Model model = TinyModels.model(3)) {
            QuantizedModel q = YaqaQuantizer.quantize(model, List.of(), 4, Method.RTN, 1);
            Path dir = tmp.resolve("q");
            QuantizedCheckpoint.write(dir, q, 1, null);
            Path f = dir.resolve(QuantizedCheckpoint.QUANT_TENSORS);
            byte[] b = Files.readAllBytes(f);
            b[b.length - 1] ^= 1;
            Files.write(f, b);
            assertThrows(RuntimeException.class, () -> QuantizedCheckpoint.read(dir));
        }
    }

    @Test
    void badInputIsRejectedWithTheReason() {
        try (Qwen3Model model = TinyModels.model(3)) {
            List<int[]> calib = TinyModels.sequences(2, 8, 1);
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> YaqaQuantizer.quantize(model, calib, 1, Method.YAQA_B, 1)).getMessage().contains("bits"));
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> YaqaQuantizer.quantize(model, calib, 9, Method.LDLQ, 1)).getMessage().contains("bits"));
            assertTrue(assertThrows(IllegalArgumentException.class,
                    () -> YaqaQuantizer.quantize(model, List.of(), 4, Method.LDLQ, 1)).getMessage().contains("calibration"));
            assertThrows(IllegalArgumentException.class,
                    () -> YaqaQuantizer.quantize(model, List.of(new int[] {61}), 4, Method.YAQA_B, 1));
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
