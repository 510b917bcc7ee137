package io.tailguard.actors.runtime;

import io.tailguard.actors.cli.Main;
import io.tailguard.compression.Method;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.model.ModelConfig;
import io.tailguard.recipes.VnmCompression;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** tailguard.compression.method = vnm and the tailguard.compression.vnm keys: parsed as `compress vnm`'s flags, refused by key. */
class CompressionSettingsTest {
    static RunSettings.Compression parse(String hocon) {
        return RunSettings.parse(RunSettingsTest.with(hocon), "run.conf").compression();
    }

    static void assertRefused(String hocon, String message) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, () -> parse(hocon)).getMessage());
    }

    @Test
    void theDefaultIsYaqaAndVnmTakesThePatternAndTheRecoveryOptions() {
        RunSettings.Compression yaqa = parse("");
        assertEquals(Method.YAQA_B, yaqa.method());
        assertNull(yaqa.vnm());
        assertEquals("yaqa_b", yaqa.label());
        assertEquals(4, yaqa.valueBits());

        RunSettings.Compression v = parse("tailguard.compression { method = vnm, vnm.pattern = \"64:2:5\" }");
        assertNull(v.method());
        assertEquals("vnm_64_2_5", v.label());
        assertEquals(32, v.valueBits());
        // the defaults are compress vnm's
        assertEquals(new VnmCompression.Settings(new VnmPattern(64, 2, 5), VnmPruner.Score.ACTIVATION, 200, 300, true, 8, 1e-3, 8,
                16, 5), v.vnm());
        VnmCompression.Options o = v.vnm().options(7, null);
        assertEquals(new VnmPruner.PermutationOptions(true, 200, 12, 128), o.permutation());
        assertEquals(300, o.recovery().steps());
        assertEquals(7, o.recovery().seed());

        RunSettings.Compression oneShot = parse("tailguard.compression { method = vnm, vnm { pattern = \"2:4\", score = magnitude,"
                + " permute-rounds = 0, recovery-steps = 0 } }");
        assertEquals("vnm_1_2_4", oneShot.label());
        VnmCompression.Options o2 = oneShot.vnm().options(7, null);
        assertFalse(o2.permutation().enabled(), "0 rounds: no permutation");
        assertNull(o2.recovery(), "0 steps: one-shot pruning");
        assertEquals(VnmPruner.Score.MAGNITUDE, o2.score());
    }

    @Test
    void badVnmKeysAreRefusedByName() {
        assertRefused("tailguard.compression.method = vnm", "run.conf: tailguard.compression.vnm.pattern: tailguard.compression.method"
                + " = vnm needs a pattern, V:N:M (e.g. 64:2:5) or 2:4");
        assertRefused("tailguard.compression { method = vnm, vnm.pattern = \"64-2-5\" }",
                "run.conf: tailguard.compression.vnm.pattern: pattern '64-2-5' is not V:N:M (e.g. 64:2:5) or 2:4");
        assertRefused("tailguard.compression { method = vnm, vnm.pattern = \"64:3:5\" }",
                "run.conf: tailguard.compression.vnm.pattern: pattern 64:3:5: N must be 2 (2:4 inside the 4 kept columns of a block)");
        assertRefused("tailguard.compression { method = vnm, vnm { pattern = \"64:2:5\", recovery-steps = -1 } }",
                "run.conf: tailguard.compression.vnm.recovery-steps: must be >= 0, got -1");
        assertRefused("tailguard.compression { method = vnm, vnm { pattern = \"64:2:5\", lora-alpha = 0 } }",
                "run.conf: tailguard.compression.vnm.lora-alpha: must be > 0, got 0.0");
        assertRefused("tailguard.compression { method = vnm, vnm { pattern = \"64:2:5\", score = wanda } }",
                "run.conf: tailguard.compression.vnm.score: must be activation or magnitude, got 'wanda'");
        assertRefused("tailguard.compression { method = vnm, vnm { pattern = \"64:2:5\", recovery-loss = mse } }",
                "run.conf: tailguard.compression.vnm.recovery-loss: must be kl or ce, got 'mse'");
        assertRefused("tailguard.compression.method = sparsegpt",
                "run.conf: tailguard.compression.method: must be yaqa-b, yaqa-a, ldlq, rtn or vnm, got \"sparsegpt\"");
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> parse("tailguard.compression.vnm.patern = \"64:2:5\""));
        assertTrue(unknown.getMessage().startsWith("run.conf: tailguard.compression.vnm.patern: unknown key"), unknown.getMessage());
        // with another method the vnm keys are not read
        assertNull(parse("tailguard.compression.vnm.recovery-steps = -1").vnm());
    }

    @Test
    void aPatternThatDoesNotFitTheModelIsRefusedBeforeTheRunStarts(@TempDir Path tmp) throws Exception {
        ModelConfig tiny = ModelConfig.preset("tiny", 64, 0);
        RunSettings.Compression wide = parse("tailguard.compression { method = vnm, vnm.pattern = \"128:2:5\" }");
        assertEquals("tailguard.compression.vnm.pattern: pattern 128:2:5 does not fit model.layers.0.self_attn.k_proj.weight [64, 128]: "
                + "64 rows are not a multiple of V = 128", assertThrows(IllegalArgumentException.class,
                () -> RunSettings.checkModel(wide, tiny)).getMessage());
        RunSettings.checkModel(parse("tailguard.compression { method = vnm, vnm.pattern = \"64:2:5\" }"), tiny);
        RunSettings.checkModel(parse(""), tiny);

        // train refuses it (exit 2) before any work: nothing is written under its output directory
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Path out = tmp.resolve("run");
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        int code;
        try {
            System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
            code = Main.run("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                    "--set", "tailguard.compression.method=vnm", "--set", "tailguard.compression.vnm.pattern=128:2:5");
        } finally {
            System.setErr(err);
        }
        String said = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(2, code, said);
        assertTrue(said.contains("tailguard.compression.vnm.pattern: pattern 128:2:5 does not fit"), said);
        assertFalse(out.toFile().exists(), "no run directory");
    }
}
