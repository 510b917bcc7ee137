package io.tailguard.runtime;

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
     * none of its keys was given); changes: "key old -> new" for every value that differs.
     */
    record Plan(BudgetController.Settings controller, LiveSettings live, CompressedActorGuard.Settings compression,
                List<String> changes) {}

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
        Map<String, Object> ctl = new LinkedHashMap<>();
        ctl.put("tau", now.tau());
        ctl.put("margin", now.margin());
        ctl.put("hysteresis", now.hysteresis());
        ctl.put("min-tokens", now.minTokens());
        ctl.put("keep-windows", now.keepWindows());
        ctl.put("min-budget", now.minBudget());
        ctl.put("max-budget", now.maxBudget());
        ctl.put("ladder-ratio", now.ladderRatio());
        ctl.put("bin-width", now.binWidth());
        Map<String, Object> before = new LinkedHashMap<>();
        ctl.forEach((k, v) -> before.put(PREFIX + k, v));
        before.put(STALENESS, live.staleness());
        before.put(LR, live.lr());
        before.put(DISTILL, live.distill() ? "on" : "off");
        before.put(ROLLOUT, compression.on() ? "on" : "off");
        before.put(PROBE_SHARE, compression.probeShare());
        before.put(MAX_LAG, compression.maxLag());
        boolean controllerKey = false;
        int staleness = live.staleness();
        double lr = live.lr();
        boolean distill = live.distill();
        boolean rollout = compression.on();
        double share = compression.probeShare();
        int maxLag = compression.maxLag();
        Map<String, Object> after = new LinkedHashMap<>(before);
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
            after.put(PREFIX + "tau", next.tau());
            after.put(PREFIX + "margin", next.margin());
            after.put(PREFIX + "hysteresis", next.hysteresis());
            after.put(PREFIX + "min-tokens", next.minTokens());
            after.put(PREFIX + "keep-windows", next.keepWindows());
            after.put(PREFIX + "min-budget", next.minBudget());
            after.put(PREFIX + "max-budget", next.maxBudget());
            after.put(PREFIX + "ladder-ratio", next.ladderRatio());
            after.put(PREFIX + "bin-width", next.binWidth());
        }
        after.put(STALENESS, staleness);
        after.put(LR, lr);
        after.put(DISTILL, distill ? "on" : "off");
        after.put(ROLLOUT, rollout ? "on" : "off");
        after.put(PROBE_SHARE, share);
        after.put(MAX_LAG, maxLag);
        List<String> diff = new ArrayList<>();
        before.forEach((k, v) -> {
            if (!v.equals(after.get(k))) {
                diff.add(k + " " + v + " -> " + after.get(k));
            }
        });
        return new Plan(next, new LiveSettings(live.version(), staleness, lr, distill),
                new CompressedActorGuard.Settings(rollout, share, maxLag), diff);
    }
}
