package io.tailguard.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.rollout.sparse.BudgetController;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Validates live changes to the controller's settings. Keys are those of tailguard.controller,
 * with or without that prefix. An unknown key or a bad value is refused with the reason, and
 * nothing changes (all or nothing).
 */
final class LiveTuning {
    static final String PREFIX = "tailguard.controller.";
    static final Set<String> KEYS = Set.of("tau", "margin", "hysteresis", "min-tokens", "keep-windows", "min-budget",
            "max-budget", "ladder-ratio", "bin-width");

    private LiveTuning() {
    }

    static BudgetController.Settings controllerSettings(BudgetController.Settings now, Map<String, String> changes, int maxContext) {
        if (changes.isEmpty()) {
            throw new IllegalArgumentException("nothing to tune (give key=value pairs)");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tau", now.tau());
        m.put("margin", now.margin());
        m.put("hysteresis", now.hysteresis());
        m.put("min-tokens", now.minTokens());
        m.put("keep-windows", now.keepWindows());
        m.put("min-budget", now.minBudget());
        m.put("max-budget", now.maxBudget());
        m.put("ladder-ratio", now.ladderRatio());
        m.put("bin-width", now.binWidth());
        for (Map.Entry<String, String> e : changes.entrySet()) {
            String key = e.getKey().startsWith(PREFIX) ? e.getKey().substring(PREFIX.length()) : e.getKey();
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException(e.getKey() + ": not live-tunable (tunable: " + String.join(", ", new java.util.TreeSet<>(KEYS)) + ")");
            }
            String v = e.getValue().strip();
            try {
                m.put(key, key.equals("tau") || key.equals("margin") || key.equals("hysteresis") || key.equals("ladder-ratio")
                        ? Double.parseDouble(v) : Long.parseLong(v));
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(PREFIX + key + ": not a number: \"" + v + "\"");
            }
        }
        Map<String, Object> full = new LinkedHashMap<>();
        m.forEach((k, v) -> full.put(PREFIX + k, v));
        Config c = ConfigFactory.parseMap(full);
        // contextMax is the run's; the controller adds its margin itself
        return RunSettings.controller(c, maxContext);
    }
}
