package io.tailguard.actors.runtime;

import com.typesafe.config.ConfigFactory;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The live keys' one declaration: names, parsing, ranges, and the generated documentation table. */
class LiveKeyTest {
    @Test
    void docsLiveSettingsIsWhatTheDeclarationsGenerate() throws Exception {
        Path file = DeploymentFilesTest.repoRoot().resolve(LiveKeyDocs.FILE);
        String expected = LiveKeyDocs.markdown();
        if (Boolean.getBoolean("tailguard.regenerate")) {
            Files.writeString(file, expected);
        }
        assertTrue(Files.isRegularFile(file), LiveKeyDocs.FILE + " is missing; " + howToRegenerate());
        assertEquals(expected, Files.readString(file), LiveKeyDocs.FILE + " differs from the LiveKey declarations; " + howToRegenerate());
    }

    private static String howToRegenerate() {
        return "regenerate it with: mvn -B -o -q test -pl actors -am -Dtest=LiveKeyTest "
                + "-Dsurefire.failIfNoSpecifiedTests=false -Dtailguard.regenerate=true";
    }

    @Test
    void everyNameAndAliasIsOneKeyAndTheRefusalListsTheAliases() {
        Set<String> names = new HashSet<>();
        for (LiveKey k : LiveKey.values()) {
            assertTrue(names.add(k.key), k.key);
            assertTrue(k.alias.equals(k.key) || names.add(k.alias), k.alias);
            assertEquals(k, LiveKey.of(" " + k.alias + " "));
            assertEquals(k, LiveKey.of(k.key));
        }
        assertEquals(17, LiveKey.values().length);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LiveKey.of("group-size"));
        assertEquals("group-size: not live-tunable (tunable: bin-width, compression-max-lag, compression-probe-share, "
                + "compression-rollout, distill, hysteresis, keep-windows, ladder-ratio, lr, margin, max-budget, min-budget, "
                + "min-sequences, min-tokens, sequence-tau, staleness, tau)", e.getMessage());
        // a key of a live section that is not live is not found by its full name either
        assertTrue(LiveKey.find("tailguard.controller.window").isEmpty());
    }

    @Test
    void tuneHelpListsTheKeysFromTheDeclarations() {
        io.tailguard.actors.cli.CliBadInputTest.Run r = io.tailguard.actors.cli.CliBadInputTest.cli("tune", "--help");
        assertEquals(0, r.code(), r.err());
        String help = r.out().replaceAll("\\s+", " ");
        assertTrue(help.contains("the controller's (tau, margin, hysteresis, sequence-tau, min-sequences, min-tokens, keep-windows, min-budget, max-budget, "
                + "ladder-ratio, bin-width), the buffer's (staleness), the learner's (lr, distill=on|off), the compressed rollout "
                + "option's (compression-rollout=on|off, compression-probe-share, compression-max-lag)"), help);
    }

    @Test
    void valuesParseByTypeAndRangeWithTheFilesWords() {
        assertEquals(0.9, LiveKey.TAU.parse(" 0.9 "));
        assertEquals(200L, LiveKey.MIN_TOKENS.parse("200"));
        assertEquals(4, LiveKey.KEEP_WINDOWS.parse("4"));
        assertEquals(true, LiveKey.DISTILL.parse("ON"));
        assertEquals(false, LiveKey.COMPRESSION_ROLLOUT.parse("false"));
        assertEquals("tailguard.controller.keep-windows: not a number: \"1.5\"",
                assertThrows(IllegalArgumentException.class, () -> LiveKey.KEEP_WINDOWS.parse("1.5")).getMessage());
        // out of int range is "not a number", not an error inside the controller
        assertEquals("tailguard.controller.min-budget: not a number: \"99999999999\"",
                assertThrows(IllegalArgumentException.class, () -> LiveKey.MIN_BUDGET.parse("99999999999")).getMessage());
        assertEquals("tailguard.compression.probe-share: must be in (0, 0.5], got 0.6",
                assertThrows(IllegalArgumentException.class, () -> LiveKey.PROBE_SHARE.parse("0.6")).getMessage());
        assertEquals("tailguard.compression.max-lag: must be >= 0, got -2",
                assertThrows(IllegalArgumentException.class, () -> LiveKey.MAX_LAG.parse("-2")).getMessage());
        assertEquals("tailguard.learner.lr: must be a positive number, got 0.0",
                assertThrows(IllegalArgumentException.class, () -> LiveKey.LR.parse("0")).getMessage());
        // the file's side: the same declaration reads the configuration
        assertEquals(3, LiveKey.STALENESS.from(ConfigFactory.parseString("tailguard.buffer.staleness = 3")));
        assertEquals("tailguard.buffer.staleness: must be >= 0, got -1", assertThrows(IllegalArgumentException.class,
                () -> LiveKey.STALENESS.from(ConfigFactory.parseString("tailguard.buffer.staleness = -1"))).getMessage());
        assertEquals("on", LiveKey.DISTILL.text(true));
        assertEquals("7.0E-5", LiveKey.LR.text(7e-5));
    }

    @Test
    void everyKeyReadsItsOwnSetting() {
        BudgetController.Settings c = new BudgetController.Settings(0.8, 0.03, 0.02, 150, 3, 48, 512, 1.5, 128, 1024, 0.7, 24);
        LiveSettings l = new LiveSettings(9, 1, 3e-4, true);
        ApproximationBudget.Settings o = new ApproximationBudget.Settings(true, 0.2, 7);
        Map<String, String> v = LiveTuning.values(c, l, o);
        assertEquals(List.of("tailguard.controller.tau", "tailguard.controller.margin", "tailguard.controller.hysteresis",
                "tailguard.controller.sequence-tau", "tailguard.controller.min-sequences", "tailguard.controller.min-tokens", "tailguard.controller.keep-windows", "tailguard.controller.min-budget",
                "tailguard.controller.max-budget", "tailguard.controller.ladder-ratio", "tailguard.controller.bin-width",
                "tailguard.buffer.staleness", "tailguard.learner.lr", "tailguard.learner.distill", "tailguard.compression.rollout",
                "tailguard.compression.probe-share", "tailguard.compression.max-lag"), List.copyOf(v.keySet()));
        assertEquals(List.of("0.8", "0.03", "0.02", "0.7", "24", "150", "3", "48", "512", "1.5", "128", "1", "3.0E-4", "on", "on", "0.2", "7"),
                List.copyOf(v.values()));
    }
}
