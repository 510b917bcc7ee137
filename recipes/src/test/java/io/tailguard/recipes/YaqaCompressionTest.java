package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedCheckpoint;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The quantization pipeline on a tiny random model: quantize, write, export, measure read back. */
class YaqaCompressionTest {
    @Test
    void writesTheQuantizedCheckpointAndItsExportAndMeasuresItReadBack(@TempDir Path tmp) throws Exception {
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = ModelConfig.preset("tiny", tok.vocabSize(), tok.eosId());
        CompressionData data = new CompressionData(Tasks.builtin("kv-recall", 64), 2, 2, 0, 7);
        Path out = tmp.resolve("q");
        Path export = tmp.resolve("deq");
        try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 1, 0.02, 0.0), Device.cpu())) {
            YaqaCompression.Result r = YaqaCompression.run(model, tmp.resolve("parent"), data, tok, data.calibration(tok),
                    data.heldOut(tok), new YaqaCompression.Options(4, Method.LDLQ, 7), out, export, Device.cpu());
            assertEquals(Files.size(out.resolve(QuantizedCheckpoint.QUANT_TENSORS)), r.bytes());
            assertTrue(Files.isRegularFile(export.resolve(CheckpointDir.CONFIG)), "the dense export is written");
            // 4 bits of a random model: the read-back differs from the original, a little
            assertTrue(r.quality().kl() > 0 && r.quality().kl() < 1, "kl " + r.quality().kl());
            assertNull(r.quality().passAt1(), "eval-n 0 measures no pass@1");
            assertTrue(r.seconds() > 0);
            // YAQA without calibration sequences is refused before anything is written
            Path none = tmp.resolve("none");
            assertThrows(IllegalArgumentException.class, () -> YaqaCompression.run(model, tmp.resolve("parent"), data, tok,
                    List.of(), data.heldOut(tok), new YaqaCompression.Options(4, Method.YAQA_B, 7), none, null, Device.cpu()));
            assertTrue(Files.notExists(none));
        }
    }
}
