package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The controller's live tuning bookkeeping: the running value of every {@link LiveKey}, the settings
 * version, each key's configured value (this node's configuration, as edits of the watched file
 * change it), and the keys a `tune` set away from it with the configured values they replaced. A
 * key tuned back to its configured value is no longer tuned. The tuning outlives the controller
 * through controller/state.json ({@link ControllerState}): a controller that starts on it starts
 * with the settings the last one ran with, under the same version, then a key whose configured value
 * changed since takes that value, as a change ({@link #applyChangedSince}). The caller applies each
 * accepted plan's controller and compressed-option settings to its engines.
 */
final class TuningBook {
    /**
     * A tuning accepted: its plan (no changes: every value was the running one, and the version
     * stays), the buffer's and learner's settings after it, and whether those changed (then they go to
     * the buffers and learners).
     */
    record Applied(LiveTuning.Plan plan, LiveSettings live, boolean runtimeChanged) {
        boolean changed() {
            return !plan.changes().isEmpty();
        }

        /**
         * Applies it to the engines: the controller's keys retune the budget controller (a changed
         * setting is a new schedule version), and the guard takes its settings. Returns the schedule after it.
         */
        io.tailguard.rollout.sparse.Schedule applyTo(BudgetController budgets, OptionBook options) {
            if (plan.controller() != null) {
                budgets.retune(plan.controller());
            }
            options.retune(budgets.settings(), plan.compression());
            return budgets.schedule();
        }

        /** "applied key old -> new, ...; settings vN" and, when the schedule changed, "; schedule vM". */
        String message(long scheduleBefore, long scheduleAfter) {
            return "applied " + String.join(", ", plan.changes()) + "; settings v" + live.version()
                    + (scheduleAfter != scheduleBefore ? "; schedule v" + scheduleAfter : "");
        }
    }

    /** One key tuned away from the configuration: its value, and the configured value it replaced. */
    record Tuned(String key, String value, String configured) implements Wire {}

    private final int maxContext;
    private final Map<String, String> configured = new LinkedHashMap<>();
    private final Map<String, String> tuned = new LinkedHashMap<>();
    private final Map<String, String> tunedFrom = new LinkedHashMap<>();
    private BudgetController.Settings controller;
    private LiveSettings live;
    private ApproximationBudget.Settings option;
    private final List<String> restored = new ArrayList<>();
    private String notRestored;
    private final Map<String, String> changedSince = new LinkedHashMap<>();

    /**
     * The configured settings (configuredLive's version is ignored), and the state a previous
     * controller left (null: none). A saved tuning that no longer applies to the configuration (a
     * value out of the range the configuration now allows) is dropped: the configured values stand, as
     * a new settings version ({@link #notRestored} says why).
     */
    TuningBook(BudgetController.Settings configuredController, LiveSettings configuredLive, ApproximationBudget.Settings configuredOption,
               int maxContext, ControllerState saved) {
        this.maxContext = maxContext;
        long version = saved == null ? 0 : saved.settingsVersion();
        this.controller = configuredController;
        this.live = new LiveSettings(version, configuredLive.staleness(), configuredLive.lr(), configuredLive.distill());
        this.option = configuredOption;
        configured.putAll(LiveTuning.values(controller, live, option));
        if (saved == null || saved.tuned().isEmpty()) {
            return;
        }
        LiveTuning.Plan previous;
        try {
            previous = LiveTuning.plan(controller, live, option, saved.tuned(), maxContext);
        } catch (IllegalArgumentException e) {
            notRestored = e.getMessage();
            live = new LiveSettings(version + 1, live.staleness(), live.lr(), live.distill());
            return;
        }
        saved.tuned().forEach((k, v) -> {
            String key = LiveTuning.canonical(k);
            if (!LiveTuning.same(configured.get(key), saved.tunedFrom().get(k))) {
                changedSince.put(key, configured.get(key));
            }
        });
        take(previous, previous.live());
        restored.addAll(previous.changes());
    }

    /** The book for a run's configured values and a previous controller's state (null: none), its restore logged. */
    static TuningBook start(RunSettings s, ControllerState saved, org.slf4j.Logger log) {
        TuningBook b = new TuningBook(s.controller(), new LiveSettings(0, s.buffer().staleness(), s.learner().lr(), s.learner().distill()),
                s.compression().guard(), s.train().longestSequence(), saved);
        if (b.notRestored != null) {
            log.warn("controller: the saved tuning {} does not apply to this configuration ({}); the configured values stand "
                    + "(settings v{})", saved.tuned(), b.notRestored, b.live.version());
        }
        if (!b.restored.isEmpty()) {
            log.info("controller: live tuning restored (settings v{}): {}", b.live.version(), String.join(", ", b.restored));
        }
        return b;
    }

    /** The settings a saved tuning restored, as "key old -> new" (empty: none). */
    List<String> restored() {
        return restored;
    }

    /** Why a saved tuning was dropped, or null. */
    String notRestored() {
        return notRestored;
    }

    /** Tuned keys whose configured value changed since they were tuned (full names to configured values). */
    Map<String, String> changedSince() {
        return changedSince;
    }

    /**
     * After a restore: the keys whose configuration changed since they were tuned take the configured
     * values, as one change, which {@code engines} applies to the engines (returning the schedule version
     * after it), logged. Refused (the configured values do not go with the rest of the tuning): the
     * tuned values stay, logged.
     */
    void applyChangedSince(java.util.function.ToLongFunction<Applied> engines, long scheduleBefore, org.slf4j.Logger log) {
        if (changedSince.isEmpty()) {
            return;
        }
        Map<String, String> since = new LinkedHashMap<>(changedSince);
        try {
            Applied a = apply(LiveTuning.plan(controller, live, option, since, maxContext));
            long after = engines.applyAsLong(a);
            log.info("controller: the configuration changed {} since they were tuned; its values stand: {}; settings v{}{}",
                    since.keySet(), String.join(", ", a.plan().changes()), a.live().version(),
                    after != scheduleBefore ? "; schedule v" + after : "");
        } catch (IllegalArgumentException e) {
            log.warn("controller: the configuration changed {} since they were tuned, but its values {} do not "
                    + "go with the rest of the tuning ({}); the tuned values stay", since.keySet(), since, e.getMessage());
        }
    }

    /**
     * A `tune` (fromFile false) or an edit of the watched file (true: the file's values become the
     * configured ones, no longer a tuning away from them), validated as a whole: refused with an
     * IllegalArgumentException naming the key and the reason, and then nothing changes.
     */
    Applied tune(Map<String, String> request, boolean fromFile) {
        LiveTuning.Plan p = LiveTuning.plan(controller, live, option, request, maxContext);
        if (fromFile) {
            Map<String, String> now = LiveTuning.values(p.controller() != null ? p.controller() : controller, p.live(), p.compression());
            for (String k : request.keySet()) {
                String key = LiveTuning.canonical(k);
                configured.put(key, now.get(key));
                tuned.remove(key);
                tunedFrom.remove(key);
            }
        }
        if (p.changes().isEmpty()) {
            return new Applied(p, live, false);
        }
        return apply(p);
    }

    private Applied apply(LiveTuning.Plan p) {
        LiveSettings next = new LiveSettings(live.version() + 1, p.live().staleness(), p.live().lr(), p.live().distill());
        boolean runtimeChanged = next.staleness() != live.staleness() || next.lr() != live.lr() || next.distill() != live.distill();
        take(p, next);
        return new Applied(p, live, runtimeChanged);
    }

    /** Takes a plan's settings, and notes its changes: a key at its configured value is not tuned, any other is, from that value. */
    private void take(LiveTuning.Plan p, LiveSettings next) {
        if (p.controller() != null) {
            controller = p.controller();
        }
        option = p.compression();
        live = next;
        p.changed().forEach((k, v) -> {
            if (LiveTuning.same(v, configured.get(k))) {
                tuned.remove(k);
                tunedFrom.remove(k);
            } else {
                tuned.put(k, v);
                tunedFrom.put(k, configured.get(k));
            }
        });
    }

    BudgetController.Settings controller() {
        return controller;
    }

    ApproximationBudget.Settings option() {
        return option;
    }

    /** The buffer's and learner's settings, with the settings version. */
    LiveSettings live() {
        return live;
    }

    /** The keys tuned away from the configuration, in the order they were first tuned. */
    List<Tuned> tuned() {
        List<Tuned> out = new ArrayList<>();
        tuned.forEach((k, v) -> out.add(new Tuned(k, v, tunedFrom.get(k))));
        return out;
    }

    /** The tuning as controller/state.json keeps it (with the prompt cursor and the open groups). */
    ControllerState state(long nextGroup, long[] openGroups) {
        return new ControllerState(nextGroup, openGroups, live.version(), tuned, tunedFrom);
    }
}
