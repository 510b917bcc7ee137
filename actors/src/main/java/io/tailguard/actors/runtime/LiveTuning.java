package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Validates live changes, by the declarations of {@link LiveKey} (full names or aliases). A request
 * is checked as a whole before anything changes: an unknown key or a bad value anywhere refuses all
 * of it with the reason (all or nothing).
 */
final class LiveTuning {

    /**
     * A validated request. controller: the controller's next settings, or null when no controller
     * key was given; live: the buffer's and learner's next settings (same version as before; the
     * caller bumps it); compression: the compressed rollout option's next settings (the same when
     * none of its keys was given); changes: "key old -> new" for every value that differs; changed:
     * each such key's new value (full names), in the form {@link #plan} reads back.
     */
    record Plan(BudgetController.Settings controller, LiveSettings live, ApproximationBudget.Settings compression,
                List<String> changes, Map<String, String> changed) {}

    private LiveTuning() {
    }

    /** The full name of a live key (tailguard.controller.tau for tau), or a refusal naming the tunable keys. */
    static String canonical(String key) {
        return LiveKey.of(key).key;
    }

    static Plan plan(BudgetController.Settings now, LiveSettings live, ApproximationBudget.Settings compression,
                     Map<String, String> changes, int maxContext) {
        if (changes.isEmpty()) {
            throw new IllegalArgumentException("nothing to tune (give key=value pairs)");
        }
        Map<LiveKey, Object> next = read(now, live, compression);
        boolean controllerKey = false;
        for (Map.Entry<String, String> e : changes.entrySet()) {
            LiveKey k = LiveKey.of(e.getKey());
            next.put(k, k.parse(e.getValue()));
            controllerKey |= k.target == LiveKey.Target.CONTROLLER;
        }
        // contextMax is the run's; the controller adds its margin itself
        BudgetController.Settings nextController = controllerKey ? controller(next, maxContext) : null;
        LiveSettings nextLive = new LiveSettings(live.version(), (Integer) next.get(LiveKey.STALENESS), (Double) next.get(LiveKey.LR),
                (Boolean) next.get(LiveKey.DISTILL));
        ApproximationBudget.Settings nextCompression = new ApproximationBudget.Settings((Boolean) next.get(LiveKey.COMPRESSION_ROLLOUT),
                (Double) next.get(LiveKey.PROBE_SHARE), (Integer) next.get(LiveKey.MAX_LAG));
        Map<String, String> before = values(now, live, compression);
        Map<String, String> after = values(nextController != null ? nextController : now, nextLive, nextCompression);
        List<String> diff = new ArrayList<>();
        Map<String, String> changed = new LinkedHashMap<>();
        before.forEach((k, v) -> {
            if (!v.equals(after.get(k))) {
                diff.add(k + " " + v + " -> " + after.get(k));
                changed.put(k, after.get(k));
            }
        });
        return new Plan(nextController, nextLive, nextCompression, diff, changed);
    }

    /** The controller's keys validated together, as the configuration file's are (RunSettings.controller). */
    private static BudgetController.Settings controller(Map<LiveKey, Object> values, int maxContext) {
        Map<String, Object> full = new LinkedHashMap<>();
        values.forEach((k, v) -> {
            if (k.target == LiveKey.Target.CONTROLLER) {
                full.put(k.key, v);
            }
        });
        Config c = ConfigFactory.parseMap(full);
        return RunSettings.controller(c, maxContext);
    }

    /** A request's pairs (keys[i]=values[i]) in their order. */
    static Map<String, String> request(String[] keys, String[] values) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (int i = 0; i < keys.length; i++) {
            kv.put(keys[i], values[i]);
        }
        return kv;
    }

    /** Two live values in their string form are the same value: numbers by value (1e-4 and 1.0E-4), others by text. */
    static boolean same(String a, String b) {
        if (a == null || b == null) {
            return a == b;
        }
        if (a.equals(b)) {
            return true;
        }
        try {
            return Double.parseDouble(a) == Double.parseDouble(b);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static Map<LiveKey, Object> read(BudgetController.Settings ctl, LiveSettings live, ApproximationBudget.Settings compression) {
        Map<LiveKey, Object> m = new EnumMap<>(LiveKey.class);
        for (LiveKey k : LiveKey.values()) {
            m.put(k, k.read(ctl, live, compression));
        }
        return m;
    }

    /** Every live key's value in its text form (full names, in declaration order), as {@link #plan} compares them. */
    static Map<String, String> values(BudgetController.Settings ctl, LiveSettings live, ApproximationBudget.Settings compression) {
        Map<String, String> m = new LinkedHashMap<>();
        read(ctl, live, compression).forEach((k, v) -> m.put(k.key, k.text(v)));
        return m;
    }
}
