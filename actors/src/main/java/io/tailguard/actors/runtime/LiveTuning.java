package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.CompressedActorGuard;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Validates live changes. The controller's keys (tailguard.controller.*, with or without that
 * prefix), the buffer's and learner's live keys (tailguard.buffer.staleness or staleness,
 * tailguard.learner.lr or lr, tailguard.learner.distill or distill), and the compressed rollout
 * option's (tailguard.compression.rollout, probe-share and max-lag, or compression-rollout,
 * compression-probe-share, compression-max-lag), which the controller keeps. A request is checked as a
 * whole before anything changes: an unknown key or a bad value anywhere refuses all of it with the
 * reason (all or nothing).
 */
final class LiveTuning {
    static final String PREFIX = "tailguard.controller.";
    static final Set<String> KEYS = Set.of("tau", "margin", "hysteresis", "min-tokens", "keep-windows", "min-budget",
            "max-budget", "ladder-ratio", "bin-width");
    static final String STALENESS = "tailguard.buffer.staleness";
    static final String LR = "tailguard.learner.lr";
    static final String DISTILL = "tailguard.learner.distill";
    /** The buffer's and learner's live keys by their short aliases. */
    static final Map<String, String> RUNTIME_KEYS = Map.of("staleness", STALENESS, "lr", LR, "distill", DISTILL);
    static final String ROLLOUT = "tailguard.compression.rollout";
    static final String PROBE_SHARE = "tailguard.compression.probe-share";
    static final String MAX_LAG = "tailguard.compression.max-lag";
    /** The compressed rollout option's live keys (the controller's) by their short aliases. */
    static final Map<String, String> COMPRESSION_KEYS = Map.of("compression-rollout", ROLLOUT,
            "compression-probe-share", PROBE_SHARE, "compression-max-lag", MAX_LAG);

    /**
     * A validated request. controller: the controller's next settings, or null when no controller
     * key was given; live: the buffer's and learner's next settings (same version as before; the
     * caller bumps it); compression: the compressed rollout option's next settings (the same when
     * none of its keys was given); changes: "key old -> new" for every value that differs; changed:
     * each such key's new value, in the form {@link #plan} reads back.
     */
    record Plan(BudgetController.Settings controller, LiveSettings live, CompressedActorGuard.Settings compression,
                List<String> changes, Map<String, String> changed) {}

    private LiveTuning() {
    }

    /** The full name of a live key (tailguard.controller.tau for tau), or a refusal naming the tunable keys. */
    static String canonical(String key) {
        String k = key.strip();
        if (k.startsWith(PREFIX) && KEYS.contains(k.substring(PREFIX.length()))) {
            return k;
        }
        if (KEYS.contains(k)) {
            return PREFIX + k;
        }
        if (RUNTIME_KEYS.containsKey(k)) {
            return RUNTIME_KEYS.get(k);
        }
        if (RUNTIME_KEYS.containsValue(k) || COMPRESSION_KEYS.containsValue(k)) {
            return k;
        }
        if (COMPRESSION_KEYS.containsKey(k)) {
            return COMPRESSION_KEYS.get(k);
        }
        Set<String> all = new TreeSet<>(KEYS);
        all.addAll(RUNTIME_KEYS.keySet());
        all.addAll(COMPRESSION_KEYS.keySet());
        throw new IllegalArgumentException(key + ": not live-tunable (tunable: " + String.join(", ", all) + ")");
    }

    static Plan plan(BudgetController.Settings now, LiveSettings live, CompressedActorGuard.Settings compression,
                     Map<String, String> changes, int maxContext) {
        if (changes.isEmpty()) {
            throw new IllegalArgumentException("nothing to tune (give key=value pairs)");
        }
        Map<String, Object> before = values(now, live, compression);
        Map<String, Object> ctl = new LinkedHashMap<>();
        for (String k : KEYS) {
            ctl.put(k, before.get(PREFIX + k));
        }
        boolean controllerKey = false;
        int staleness = live.staleness();
        double lr = live.lr();
        boolean distill = live.distill();
        boolean rollout = compression.on();
        double share = compression.probeShare();
        int maxLag = compression.maxLag();
        for (Map.Entry<String, String> e : changes.entrySet()) {
            String key = canonical(e.getKey());
            String v = e.getValue().strip();
            try {
                switch (key) {
                    case STALENESS -> staleness = RunSettings.atLeast(key, Integer.parseInt(v), 0);
                    case LR -> lr = RunSettings.positiveDouble(key, Double.parseDouble(v));
                    case DISTILL -> distill = RunSettings.onOff(key, v);
                    case ROLLOUT -> rollout = RunSettings.onOff(key, v);
                    case PROBE_SHARE -> share = RunSettings.probeShare(key, Double.parseDouble(v));
                    case MAX_LAG -> maxLag = RunSettings.atLeast(key, Integer.parseInt(v), 0);
                    default -> {
                        String k = key.substring(PREFIX.length());
                        ctl.put(k, k.equals("tau") || k.equals("margin") || k.equals("hysteresis") || k.equals("ladder-ratio")
                                ? Double.parseDouble(v) : Long.parseLong(v));
                        controllerKey = true;
                    }
                }
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(key + ": not a number: \"" + v + "\"");
            }
        }
        BudgetController.Settings next = null;
        if (controllerKey) {
            Map<String, Object> full = new LinkedHashMap<>();
            ctl.forEach((k, v) -> full.put(PREFIX + k, v));
            Config c = ConfigFactory.parseMap(full);
            // contextMax is the run's; the controller adds its margin itself
            next = RunSettings.controller(c, maxContext);
        }
        LiveSettings nextLive = new LiveSettings(live.version(), staleness, lr, distill);
        CompressedActorGuard.Settings nextCompression = new CompressedActorGuard.Settings(rollout, share, maxLag);
        Map<String, Object> after = values(next != null ? next : now, nextLive, nextCompression);
        List<String> diff = new ArrayList<>();
        Map<String, String> changed = new LinkedHashMap<>();
        before.forEach((k, v) -> {
            if (!v.equals(after.get(k))) {
                diff.add(k + " " + v + " -> " + after.get(k));
                changed.put(k, String.valueOf(after.get(k)));
            }
        });
        return new Plan(next, nextLive, nextCompression, diff, changed);
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

    /** Every live key's value (full names; on/off switches as "on" or "off"), as {@link #plan} compares them. */
    static Map<String, Object> values(BudgetController.Settings ctl, LiveSettings live, CompressedActorGuard.Settings compression) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(PREFIX + "tau", ctl.tau());
        m.put(PREFIX + "margin", ctl.margin());
        m.put(PREFIX + "hysteresis", ctl.hysteresis());
        m.put(PREFIX + "min-tokens", ctl.minTokens());
        m.put(PREFIX + "keep-windows", ctl.keepWindows());
        m.put(PREFIX + "min-budget", ctl.minBudget());
        m.put(PREFIX + "max-budget", ctl.maxBudget());
        m.put(PREFIX + "ladder-ratio", ctl.ladderRatio());
        m.put(PREFIX + "bin-width", ctl.binWidth());
        m.put(STALENESS, live.staleness());
        m.put(LR, live.lr());
        m.put(DISTILL, live.distill() ? "on" : "off");
        m.put(ROLLOUT, compression.on() ? "on" : "off");
        m.put(PROBE_SHARE, compression.probeShare());
        m.put(MAX_LAG, compression.maxLag());
        return m;
    }
}
