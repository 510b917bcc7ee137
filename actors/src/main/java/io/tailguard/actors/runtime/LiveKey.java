package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;

import java.util.Arrays;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The live keys: every setting a running run may change without a restart, declared once each with
 * its full name, its short alias, its type, its valid range, where it applies and what it means.
 * Validation and parsing of `tune` and of watched-file edits ({@link LiveTuning}), the names the
 * config watcher looks for, what `status` and controller/state.json call a tuned key, and the table
 * in docs/live-settings.md ({@link LiveKeyDocs}) all come from this list. The controller's keys are
 * validated together by {@link BudgetController.Settings} (their ranges depend on each other); the
 * others one by one, with the words the configuration file's parser uses.
 */
public enum LiveKey {
    TAU("tailguard.controller.tau", "tau", Type.REAL, Target.CONTROLLER, "(0, 1)",
            "Target p5 of α per position bin.", (c, l, o) -> c.tau()),
    MARGIN("tailguard.controller.margin", "margin", Type.REAL, Target.CONTROLLER, "[0, tau)",
            "Raise a bin's budget when its p5 α < tau − margin.", (c, l, o) -> c.margin()),
    HYSTERESIS("tailguard.controller.hysteresis", "hysteresis", Type.REAL, Target.CONTROLLER, ">= 0, tau + hysteresis <= 1",
            "Lower it only when the shadow p5 α one rung lower is >= tau + hysteresis.", (c, l, o) -> c.hysteresis()),
    SEQUENCE_TAU("tailguard.controller.sequence-tau", "sequence-tau", Type.REAL, Target.CONTROLLER,
            "0 (off), or in (margin, 1 − hysteresis]",
            "The sequence guard: a floor under the sequence α, exp of minus the mean number of tokens per scored trajectory at "
                    + "which a dense sampler coupled to the sparse one would draw another (Σ 1 − α). Below sequence-tau − margin the "
                    + "bin with the largest share is raised; a lowering must keep it >= sequence-tau + hysteresis.", (c, l, o) -> c.sequenceTau()),
    MIN_SEQUENCES("tailguard.controller.min-sequences", "min-sequences", Type.LONG, Target.CONTROLLER, ">= 1",
            "Scored trajectories a bin needs at its budget (over the kept windows) before the sequence α is judged.",
            (c, l, o) -> c.minSequences()),
    MIN_TOKENS("tailguard.controller.min-tokens", "min-tokens", Type.LONG, Target.CONTROLLER, ">= 1",
            "Tokens a bin needs (over the kept windows) before the controller acts on it.", (c, l, o) -> c.minTokens()),
    KEEP_WINDOWS("tailguard.controller.keep-windows", "keep-windows", Type.INT, Target.CONTROLLER, ">= 1",
            "Reporting windows kept per (bin, budget).", (c, l, o) -> c.keepWindows()),
    MIN_BUDGET("tailguard.controller.min-budget", "min-budget", Type.INT, Target.CONTROLLER,
            "a page multiple, >= the smallest budget", "The budget ladder's lowest rung.", (c, l, o) -> c.minBudget()),
    MAX_BUDGET("tailguard.controller.max-budget", "max-budget", Type.INT, Target.CONTROLLER, "a page multiple, >= min-budget",
            "The budget ladder's cap.", (c, l, o) -> c.maxBudget()),
    LADDER_RATIO("tailguard.controller.ladder-ratio", "ladder-ratio", Type.REAL, Target.CONTROLLER, "(1, 4]",
            "About how far apart the budget ladder's rungs are.", (c, l, o) -> c.ladderRatio()),
    BIN_WIDTH("tailguard.controller.bin-width", "bin-width", Type.INT, Target.CONTROLLER, "a positive page multiple",
            "Position bin width in tokens.", (c, l, o) -> c.binWidth()),
    STALENESS("tailguard.buffer.staleness", "staleness", Type.INT, Target.BUFFER, ">= 0",
            "Drop trajectories more than this many policy versions behind the learner (from the next batch).",
            (c, l, o) -> l.staleness()),
    LR("tailguard.learner.lr", "lr", Type.REAL, Target.LEARNER, "> 0",
            "Peak learning rate (from the next step, under the same warm-up shape).", (c, l, o) -> l.lr()),
    DISTILL("tailguard.learner.distill", "distill", Type.SWITCH, Target.LEARNER, "on | off",
            "DistillSparse: a LoRA for the sparse actor, trained after each step and published with it.",
            (c, l, o) -> l.distill()),
    COMPRESSION_ROLLOUT("tailguard.compression.rollout", "compression-rollout", Type.SWITCH, Target.COMPRESSED_OPTION, "on | off",
            "Compressed weights as rollout options of the approximation budget, under the tail guard.", (c, l, o) -> o.on()),
    PROBE_SHARE("tailguard.compression.probe-share", "compression-probe-share", Type.REAL, Target.COMPRESSED_OPTION, "(0, 0.5]",
            "The share of leases the neighbours of the rollout option in use (by predicted cost) get.", (c, l, o) -> o.probeShare()),
    MAX_LAG("tailguard.compression.max-lag", "compression-max-lag", Type.INT, Target.COMPRESSED_OPTION, ">= 0",
            "The most policy versions compressed weights may lag the policy they are probed against.", (c, l, o) -> o.maxLag());

    /** How a value is written: its parser, and its text form (switches as on/off). */
    enum Type {
        REAL("number"), INT("integer"), LONG("integer"), SWITCH("on/off");

        final String doc;

        Type(String doc) {
            this.doc = doc;
        }
    }

    /** Who applies a change: the controller's budget controller, the buffer, the learner, or the compressed option's guard. */
    enum Target {
        CONTROLLER("controller (new schedule version)", "the controller's"), BUFFER("trajectory buffer", "the buffer's"),
        LEARNER("learner", "the learner's"), COMPRESSED_OPTION("controller's approximation budget", "the compressed rollout option's");

        final String doc;
        final String owner;

        Target(String doc, String owner) {
            this.doc = doc;
            this.owner = owner;
        }
    }

    /** A key's value in the running settings. */
    private interface Reader {
        Object of(BudgetController.Settings controller, LiveSettings live, ApproximationBudget.Settings option);
    }

    final String key;
    final String alias;
    final Type type;
    final Target target;
    final String range;
    final String doc;
    private final Reader reader;

    LiveKey(String key, String alias, Type type, Target target, String range, String doc, Reader reader) {
        this.key = key;
        this.alias = alias;
        this.type = type;
        this.target = target;
        this.range = range;
        this.doc = doc;
        this.reader = reader;
    }

    /** The key by its full name or its alias (surrounding blanks ignored), if it is a live key. */
    static Optional<LiveKey> find(String name) {
        String k = name.strip();
        return Arrays.stream(values()).filter(x -> x.key.equals(k) || x.alias.equals(k)).findFirst();
    }

    /** The key by its full name or alias, or a refusal naming every alias. */
    static LiveKey of(String name) {
        return find(name).orElseThrow(() -> new IllegalArgumentException(name + ": not live-tunable (tunable: "
                + String.join(", ", aliases()) + ")"));
    }

    static Set<String> aliases() {
        return Arrays.stream(values()).map(x -> x.alias).collect(Collectors.toCollection(TreeSet::new));
    }

    /**
     * The keys by alias, grouped by where they apply, for `tune --help`: "the controller's (tau, ...),
     * the buffer's (staleness), ..."; switches as alias=on|off.
     */
    public static String summary() {
        return Arrays.stream(Target.values()).map(t -> t.owner + " (" + Arrays.stream(values()).filter(k -> k.target == t)
                .map(k -> k.type == Type.SWITCH ? k.alias + "=on|off" : k.alias).collect(Collectors.joining(", ")) + ")")
                .collect(Collectors.joining(", "));
    }

    /** This key's value in the running settings (Double, Integer, Long or Boolean). */
    Object read(BudgetController.Settings controller, LiveSettings live, ApproximationBudget.Settings option) {
        return reader.of(controller, live, option);
    }

    /**
     * A requested value, parsed by type and, unless it is a controller key (validated together),
     * checked against its range: the same words as the configuration file's.
     */
    Object parse(String text) {
        String v = text.strip();
        try {
            return check(switch (type) {
                case REAL -> Double.parseDouble(v);
                case INT -> Integer.parseInt(v);
                case LONG -> Long.parseLong(v);
                case SWITCH -> RunSettings.onOff(key, v);
            });
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + ": not a number: \"" + v + "\"");
        }
    }

    /** This key from a configuration (where RunSettings reads the buffer's, learner's and option's keys). */
    Object from(Config c) {
        return check(switch (type) {
            case REAL -> c.getDouble(key);
            case INT -> c.getInt(key);
            case LONG -> c.getLong(key);
            case SWITCH -> RunSettings.onOff(key, c.getString(key));
        });
    }

    private Object check(Object v) {
        return switch (this) {
            case STALENESS, MAX_LAG -> RunSettings.atLeast(key, (Integer) v, 0);
            case LR -> RunSettings.positiveDouble(key, (Double) v);
            case PROBE_SHARE -> RunSettings.probeShare(key, (Double) v);
            default -> v; // switches are checked by parsing; the controller's keys by BudgetController.Settings
        };
    }

    /** A value's text form, as tune's messages, status and controller/state.json write it. */
    String text(Object v) {
        return v instanceof Boolean b ? (b ? "on" : "off") : String.valueOf(v);
    }
}
