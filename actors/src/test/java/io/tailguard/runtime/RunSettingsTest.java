package io.tailguard.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunSettingsTest {
    static Config with(String hocon) {
        return ConfigFactory.parseString(hocon).withFallback(ConfigFactory.load()).resolve();
    }

    @Test
    void theDefaultsParse() {
        RunSettings s = RunSettings.parse(with(""), "test");
        assertEquals(0.86, s.controller().tau());
        assertEquals("kv-recall", s.train().task());
        assertEquals(8, s.rollout().groupSize());
    }

    @Test
    void badKeysAndValuesNameTheKeyAndTheReason() {
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.controller.tua = 0.9"), "run.conf"));
        assertTrue(unknown.getMessage().startsWith("run.conf: tailguard.controller.tua: unknown key"), unknown.getMessage());
        IllegalArgumentException tau = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.controller.tau = 2"), "run.conf"));
        assertTrue(tau.getMessage().contains("tailguard.controller.tau: must be in (0, 1)"), tau.getMessage());
        IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.rollout.group-size = many"), "run.conf"));
        assertTrue(type.getMessage().contains("group-size"), type.getMessage());
        IllegalArgumentException ctx = assertThrows(IllegalArgumentException.class,
                () -> RunSettings.parse(with("tailguard.train.context-max = 100\ntailguard.train.context-min = 200"), "run.conf"));
        assertTrue(ctx.getMessage().contains("context-max"), ctx.getMessage());
    }

    @Test
    void liveTuningValidatesAllOrNothing() {
        RunSettings s = RunSettings.parse(with(""), "test");
        var next = LiveTuning.controllerSettings(s.controller(), java.util.Map.of("tau", "0.9", "tailguard.controller.margin", "0.03"), 256);
        assertEquals(0.9, next.tau());
        assertEquals(0.03, next.margin());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.controllerSettings(s.controller(), java.util.Map.of("tau", "2"), 256));
        assertTrue(bad.getMessage().contains("tau"), bad.getMessage());
        IllegalArgumentException notTunable = assertThrows(IllegalArgumentException.class,
                () -> LiveTuning.controllerSettings(s.controller(), java.util.Map.of("group-size", "4"), 256));
        assertTrue(notTunable.getMessage().contains("not live-tunable"), notTunable.getMessage());
    }
}
