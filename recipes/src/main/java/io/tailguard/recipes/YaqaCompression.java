package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.compression.DenseExport;
import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedCheckpoint;
import io.tailguard.compression.QuantizedModel;
import io.tailguard.compression.YaqaQuantizer;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Quantization of a model's decoder linear layers (docs/algorithms.md, YAQA; or the RTN and LDLQ
 * baselines): quantize on the calibration sequences, write the quantized checkpoint (and, if asked,
 * a plain dense export of its dequantized weights), then measure it read back against the original
 * ({@link CompressionData#quality}).
 */
public final class YaqaCompression {

    /** B bits per weight (2..8) by {@code method}; seed drives the incoherence signs and the sketch's labels. */
    public record Options(int bits, Method method, long seed) {}

    /**
     * The quantized model, the seconds quantizing took (writing and measuring not counted), the
     * quality read back, and the bytes of the packed codes.
     */
    public record Result(QuantizedModel quantized, double seconds, CompressionData.Quality quality, long bytes) {}

    private YaqaCompression() {
    }

    /**
     * Quantizes {@code model} (left as it is) from the checkpoint {@code parent} under {@code o}, writes
     * it to {@code out} (and the dense export to {@code exportDequantized}, if not null), and measures
     * it; calib and held are the data's sequences.
     */
    public static Result run(Qwen3Model model, Path parent, CompressionData data, Tokenizer tok, List<int[]> calib,
                             List<int[]> held, Options o, Path out, Path exportDequantized, Device device) throws IOException {
        long t0 = System.nanoTime();
        QuantizedModel q = YaqaQuantizer.quantize(model, calib, o.bits(), o.method(), o.seed());
        double seconds = (System.nanoTime() - t0) / 1e9;
        String tokJson = CompressionData.tokenizerJson(parent);
        QuantizedCheckpoint.write(out, q, tokJson, 0, parent.toString());
        if (exportDequantized != null) {
            DenseExport.write(exportDequantized, q, tokJson);
        }
        CompressionData.Quality quality = data.quality(model, out, device, held, tok);
        return new Result(q, seconds, quality, Files.size(out.resolve(QuantizedCheckpoint.QUANT_TENSORS)));
    }
}
