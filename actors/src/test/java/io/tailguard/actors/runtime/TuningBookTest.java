package io.tailguard.actors.runtime;

import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The controller's tuning bookkeeping, without an actor system (the configured values: reference.conf's, plus `extra`). */
class TuningBookTest {
    static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TuningBookTest.class);

    static RunSettings settings(String extra) {
        return RunSettings.parse(ConfigFactory.parseString(extra).withFallback(ConfigFactory.load()).resolve(), "test");
    }

    static TuningBook book(String extra, ControllerState saved) {
        RunSettings s = settings(extra);
        return new TuningBook(s.controller(), new LiveSettings(0, s.buffer().staleness(), s.learner().lr(), s.learner().distill()),
                s.compression().guard(), s.train().contextMax(), saved);
    }

    static Map<String, String> kv(String... pairs) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put(pairs[i], pairs[i + 1]);
        }
        return m;
    }

    @Test
    void tuneThenBackToTheConfiguredValueThenTuneAgain() {
        TuningBook b = book("tailguard.learner.lr = 2e-4", null);
        assertEquals(0, b.live().version());
        TuningBook.Applied a = b.tune(kv("lr", "5e-5"), false);
        assertTrue(a.changed() && a.runtimeChanged());
        assertEquals(List.of("tailguard.learner.lr 2.0E-4 -> 5.0E-5"), a.plan().changes());
        assertEquals(new LiveSettings(1, 2, 5e-5, false), b.live());
        assertEquals(List.of(new TuningBook.Tuned("tailguard.learner.lr", "5.0E-5", "2.0E-4")), b.tuned());

        // back to the configured value (written differently): a change, and no longer tuned
        assertTrue(b.tune(kv("tailguard.learner.lr", "0.0002"), false).changed());
        assertEquals(2, b.live().version());
        assertTrue(b.tuned().isEmpty());

        b.tune(kv("lr", "7e-5"), false);
        assertEquals(3, b.live().version());
        assertEquals(List.of(new TuningBook.Tuned("tailguard.learner.lr", "7.0E-5", "2.0E-4")), b.tuned());

        // the running values: no change, the same version
        TuningBook.Applied same = b.tune(kv("tau", "0.86", "lr", "7e-5"), false);
        assertFalse(same.changed());
        assertEquals(3, b.live().version());
        assertEquals(0.86, same.plan().controller().tau(), "tau given: the controller's settings are planned");
    }

    @Test
    void aControllerKeyIsAControllerChangeAndARefusalChangesNothing() {
        TuningBook b = book("", null);
        io.tailguard.rollout.sparse.BudgetController budgets = new io.tailguard.rollout.sparse.BudgetController(b.controller(),
                io.tailguard.rollout.sparse.Schedule.dense());
        OptionBook options = new OptionBook(budgets, b.option(), (f, sched) -> 1.0, 0);
        long v0 = budgets.schedule().version();
        TuningBook.Applied a = b.tune(kv("tau", "0.9", "compression-max-lag", "3"), false);
        assertEquals(0.9, a.plan().controller().tau());
        assertFalse(a.runtimeChanged(), "the buffer and learner keep their settings");
        assertEquals(v0 + 1, a.applyTo(budgets, options).version(), "a changed controller setting is a new schedule version");
        assertEquals(0.9, budgets.settings().tau());
        assertEquals(3, options.settings().maxLag());
        assertEquals("applied tailguard.controller.tau 0.86 -> 0.9, tailguard.compression.max-lag 50 -> 3; settings v1; schedule v"
                + (v0 + 1), a.message(v0, v0 + 1));
        assertEquals(v0 + 1, b.tune(kv("compression-max-lag", "4"), false).applyTo(budgets, options).version(),
                "the option's keys are no schedule change");
        assertEquals(4, options.settings().maxLag());
        assertEquals(0.9, b.controller().tau());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.tune(kv("tau", "0.8", "lr", "-1"), false));
        assertEquals("tailguard.learner.lr: must be a positive number, got -1.0", e.getMessage());
        assertEquals(0.9, b.controller().tau());
        assertEquals(2, b.live().version());
        assertEquals(List.of(new TuningBook.Tuned("tailguard.controller.tau", "0.9", "0.86"),
                new TuningBook.Tuned("tailguard.compression.max-lag", "4", "50")), b.tuned());
    }

    @Test
    void aFileEditChangesTheConfigurationAndATuneAfterItTunesAwayFromTheNewValue() {
        TuningBook b = book("", null);
        b.tune(kv("tailguard.compression.probe-share", "0.3"), true);
        assertEquals(1, b.live().version());
        assertEquals(0.3, b.option().probeShare());
        assertTrue(b.tuned().isEmpty(), "a file edit is no tuning");
        b.tune(kv("compression-probe-share", "0.4"), false);
        assertEquals(List.of(new TuningBook.Tuned("tailguard.compression.probe-share", "0.4", "0.3")), b.tuned());
        // the file says 0.4 now too: configured, no longer tuned, and no change
        assertFalse(b.tune(kv("tailguard.compression.probe-share", "0.4"), true).changed());
        assertTrue(b.tuned().isEmpty());
        assertEquals(2, b.live().version());
    }

    @Test
    void aRestartedControllerStartsTunedAndAConfigurationChangedSinceWins() {
        TuningBook first = book("", null);
        first.tune(kv("tau", "0.9", "lr", "5e-5"), false);
        first.tune(kv("staleness", "1"), false);
        ControllerState saved = first.state(12, new long[] {7, 8});
        assertEquals(Map.of("tailguard.controller.tau", "0.9", "tailguard.learner.lr", "5.0E-5", "tailguard.buffer.staleness", "1"),
                saved.tuned());
        assertEquals("0.86", saved.tunedFrom().get("tailguard.controller.tau"));
        assertEquals(2, saved.settingsVersion());

        // the same configuration: the same settings under the same version
        TuningBook same = book("", saved);
        assertEquals(new LiveSettings(2, 1, 5e-5, false), same.live());
        assertEquals(0.9, same.controller().tau());
        assertTrue(same.changedSince().isEmpty());
        List<TuningBook.Applied> applied = new java.util.ArrayList<>();
        same.applyChangedSince(x -> applied.add(x) ? 1 : 0, 1, LOG);
        assertTrue(applied.isEmpty(), "nothing changed since");
        assertEquals(3, same.tuned().size());

        // the configuration's tau changed since it was tuned: the configured value stands, as a change
        TuningBook edited = book("tailguard.controller.tau = 0.8", saved);
        assertEquals(0.9, edited.controller().tau());
        assertEquals(Map.of("tailguard.controller.tau", "0.8"), edited.changedSince());
        edited.applyChangedSince(x -> applied.add(x) ? 2 : 0, 1, LOG);
        assertEquals(1, applied.size());
        assertEquals(List.of("tailguard.controller.tau 0.9 -> 0.8"), applied.get(0).plan().changes());
        assertEquals(0.8, applied.get(0).plan().controller().tau(), "the engines get the configured tau");
        assertEquals(0.8, edited.controller().tau());
        assertEquals(3, edited.live().version());
        // restored in the declaration order of the keys
        assertEquals(List.of(new TuningBook.Tuned("tailguard.buffer.staleness", "1", "2"),
                new TuningBook.Tuned("tailguard.learner.lr", "5.0E-5", "2.0E-4")), edited.tuned());
    }

    @Test
    void aSavedTuningTheConfigurationNoLongerAllowsIsDroppedAsANewVersion() {
        // hysteresis 0.1 went with tau 0.86 (0.96 <= 1); with tau 0.95 it does not
        ControllerState saved = new ControllerState(0, new long[0], 4, Map.of("tailguard.controller.hysteresis", "0.1"),
                Map.of("tailguard.controller.hysteresis", "0.01"));
        TuningBook b = book("tailguard.controller.tau = 0.95", saved);
        assertTrue(b.notRestored().startsWith("tailguard.controller.hysteresis: must be >= 0 with tau + hysteresis <= 1"), b.notRestored());
        assertEquals(5, b.live().version());
        assertEquals(0.01, b.controller().hysteresis());
        assertTrue(b.tuned().isEmpty());
        // a state file from before the tuning was kept: no tuning, version 0
        TuningBook old = book("", new ControllerState(7, new long[] {5, 6}, 0, null, null));
        assertEquals(0, old.live().version());
        assertTrue(old.restored().isEmpty() && old.tuned().isEmpty());
    }
}
