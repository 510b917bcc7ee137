package io.tailguard.rollout.sparse;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigList;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * A sparsity schedule: the KV budget, in tokens, that sparse decode may attend over, as a function of
 * the current context length (docs/algorithms.md, "Calibration").
 *
 * <p>Context lengths fall into bins {@code [i·binWidth, (i+1)·binWidth)}; bin i has budget
 * {@code budgets()[i]}; a length beyond the last bin takes the last bin's budget. Budgets obey
 * {@link Budgets}: multiples of the page size, at least {@link Budgets#MIN_BUDGET} (the sink page
 * and the 2 most recent pages, which are always kept), and never decreasing with position. The
 * dense schedule's budget is {@link Integer#MAX_VALUE} everywhere, so "budget ≥ context" reads the
 * same for dense and sparse.
 *
 * <p>A schedule also names its <em>dense layers</em>, which always attend over every token (default
 * {@link #DEFAULT_DENSE_LAYERS}): the sparse kernel ({@link BlockTopKAttention#of}), its
 * teacher-forced mask ({@link BlockTopKMask#factory}) and the {@link CostModel} all read them from
 * the schedule, so they always agree. Layer indices beyond the model are ignored.
 *
 * <p>Three kinds: {@code dense}, {@code fixed} (one budget at every length) and {@code bins}. Each
 * schedule carries a positive {@link #version()}, which the controller bumps when it adapts the
 * schedule online. Instances are immutable; {@link #equals} compares kind, bin width, budgets,
 * dense layers and version.
 *
 * <p>The file format (HOCON) is documented in {@code config/schedules/README.md}:
 * <pre>
 * tailguard.schedule {
 *   version = 1
 *   kind = bins            # dense | fixed | bins
 *   bin-width = 2048       # tokens; optional, default 2048
 *   dense-layers = [0, 1]  # optional, default [0, 1]; written only when not the default
 *   bins = [
 *     { start = 0, end = 2048, budget = 512 }
 *     { start = 2048, budget = 1024 }          # the last bin may be open-ended
 *   ]
 *   # kind = fixed takes   budget = 1024   instead of bins
 * }
 * </pre>
 * A bin may span several bin widths (its end − start must be a multiple of bin-width); it then covers
 * that many entries of {@link #budgets()}. Unknown keys, anywhere in the file, are refused.
 */
public final class Schedule {
    public static final int DEFAULT_BIN_WIDTH = 2048;
    /** The layers that decode densely unless a schedule names others (docs/algorithms.md, "Block-Top-k"). */
    public static final SortedSet<Integer> DEFAULT_DENSE_LAYERS = Collections.unmodifiableSortedSet(new TreeSet<>(List.of(0, 1)));
    /** The root path of a schedule in a HOCON file. */
    public static final String ROOT = "tailguard.schedule";

    /** What kind of schedule this is; fixes which keys its HOCON form takes. */
    public enum Kind {
        DENSE, FIXED, BINS;

        String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private static final Schedule DENSE = new Schedule(Kind.DENSE, DEFAULT_BIN_WIDTH, new int[] {Integer.MAX_VALUE}, 1,
            DEFAULT_DENSE_LAYERS);

    private final Kind kind;
    private final int binWidth;
    private final int[] budgets;
    private final long version;
    private final SortedSet<Integer> denseLayers;

    private Schedule(Kind kind, int binWidth, int[] budgets, long version, SortedSet<Integer> denseLayers) {
        this.kind = kind;
        this.binWidth = binWidth;
        this.budgets = budgets;
        this.version = version;
        this.denseLayers = denseLayers;
    }

    /** Dense attention at every length (version 1). */
    public static Schedule dense() {
        return DENSE;
    }

    /** One budget at every length (version 1, default bin width). */
    public static Schedule fixed(int budget) {
        checkBudget("budget", budget, "");
        return new Schedule(Kind.FIXED, DEFAULT_BIN_WIDTH, new int[] {budget}, 1, DEFAULT_DENSE_LAYERS);
    }

    /**
     * Bin i = [i·binWidth, (i+1)·binWidth) gets budgets[i]; the last budget also covers every longer
     * context (version 1).
     */
    public static Schedule ofBins(int binWidth, int[] budgets) {
        checkBinWidth("bin-width", binWidth, "");
        if (budgets == null || budgets.length == 0) {
            throw new IllegalArgumentException("bins: at least one bin is needed");
        }
        for (int i = 0; i < budgets.length; i++) {
            checkBudget("bins[" + i + "].budget", budgets[i], "");
            if (i > 0 && budgets[i] < budgets[i - 1]) {
                throw new IllegalArgumentException(decreasing("bins[" + i + "].budget", budgets[i], "bins[" + (i - 1) + "].budget", budgets[i - 1], ""));
            }
        }
        return new Schedule(Kind.BINS, binWidth, budgets.clone(), 1, DEFAULT_DENSE_LAYERS);
    }

    /** The same schedule with another version (the controller bumps it on every change). */
    public Schedule withVersion(long newVersion) {
        if (newVersion <= 0) {
            throw new IllegalArgumentException("version: must be a positive integer, got " + newVersion);
        }
        return new Schedule(kind, binWidth, budgets, newVersion, denseLayers);
    }

    /** The same schedule with other dense layers (indices ≥ 0; beyond the model they are ignored). */
    public Schedule withDenseLayers(Set<Integer> layers) {
        SortedSet<Integer> sorted = new TreeSet<>();
        for (Integer layer : layers) {
            if (layer == null || layer < 0) {
                throw new IllegalArgumentException("dense-layers: layer indices must be >= 0, got " + layer);
            }
            sorted.add(layer);
        }
        return sorted.equals(denseLayers) ? this
                : new Schedule(kind, binWidth, budgets, version, sorted.equals(DEFAULT_DENSE_LAYERS)
                ? DEFAULT_DENSE_LAYERS : Collections.unmodifiableSortedSet(sorted));
    }

    /**
     * Dense layers given as a list (a command's option): distinct indices ≥ 0, as a set for
     * {@link #withDenseLayers}; else IllegalArgumentException "dense-layers: ..." with the list.
     */
    public static SortedSet<Integer> denseLayerSet(int... layers) {
        SortedSet<Integer> set = new TreeSet<>();
        for (int layer : layers) {
            if (layer < 0 || !set.add(layer)) {
                throw new IllegalArgumentException("dense-layers: layer indices must be distinct and >= 0, got "
                        + Arrays.toString(layers));
            }
        }
        return set.equals(DEFAULT_DENSE_LAYERS) ? DEFAULT_DENSE_LAYERS : Collections.unmodifiableSortedSet(set);
    }

    /** The layers that always decode densely, ascending (unmodifiable). */
    public SortedSet<Integer> denseLayers() {
        return denseLayers;
    }

    public Kind kind() {
        return kind;
    }

    public boolean isDense() {
        return kind == Kind.DENSE;
    }

    public int binWidth() {
        return binWidth;
    }

    public long version() {
        return version;
    }

    /**
     * The budget per bin, a copy. Dense: {Integer.MAX_VALUE}; fixed: {budget}; bins: one entry per
     * bin-width-wide bin from position 0.
     */
    public int[] budgets() {
        return budgets.clone();
    }

    /** Number of bins (entries of {@link #budgets()}). */
    public int binCount() {
        return budgets.length;
    }

    /**
     * The budget at a context length: that of the bin holding position contextLength, or of the last
     * bin beyond it. {@link Integer#MAX_VALUE} for the dense schedule.
     */
    public int budgetAt(int contextLength) {
        if (contextLength < 0) {
            throw new IllegalArgumentException("context length must be ≥ 0, got " + contextLength);
        }
        int bin = contextLength / binWidth;
        return budgets[Math.min(bin, budgets.length - 1)];
    }

    /** True when a step at this context length attends over every token. */
    public boolean isDenseAt(int contextLength) {
        return budgetAt(contextLength) >= contextLength;
    }

    // ---------------------------------------------------------------- HOCON

    /** The canonical HOCON form; {@link #parseString} of it gives an equal schedule. */
    public String toHocon() {
        StringBuilder s = new StringBuilder();
        s.append(ROOT).append(" {\n");
        s.append("  version = ").append(version).append('\n');
        s.append("  kind = ").append(kind.key()).append('\n');
        s.append("  bin-width = ").append(binWidth).append('\n');
        if (!denseLayers.equals(DEFAULT_DENSE_LAYERS)) {
            s.append("  dense-layers = ").append(denseLayers).append('\n');
        }
        switch (kind) {
            case DENSE -> { }
            case FIXED -> s.append("  budget = ").append(budgets[0]).append('\n');
            case BINS -> {
                s.append("  bins = [\n");
                for (int i = 0; i < budgets.length; i++) {
                    long start = (long) i * binWidth;
                    s.append("    { start = ").append(start);
                    if (i < budgets.length - 1) {
                        s.append(", end = ").append(start + binWidth);
                    }
                    s.append(", budget = ").append(budgets[i]).append(" }\n");
                }
                s.append("  ]\n");
            }
        }
        s.append("}\n");
        return s.toString();
    }

    /** Reads a schedule file; errors are one line naming the file, the key path and the reason. */
    public static Schedule parse(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read schedule file: " + e.getMessage());
        }
        return parseString(text, file.toString());
    }

    /**
     * Parses a schedule from HOCON text; {@code where} names the source in error messages (a file
     * name, "--set", ...).
     */
    public static Schedule parseString(String hocon, String where) {
        Config root;
        try {
            root = ConfigFactory.parseString(hocon, ConfigParseOptions.defaults()
                    .setSyntax(ConfigSyntax.CONF).setOriginDescription(where).setAllowMissing(false))
                    .resolve();
        } catch (ConfigException e) {
            throw new IllegalArgumentException(oneLine(where, e));
        }
        if (!root.hasPathOrNull(ROOT)) {
            throw new IllegalArgumentException(where + ": " + ROOT + ": missing (a schedule file holds one " + ROOT + " { ... } block)");
        }
        // Nothing but tailguard.schedule may appear in a schedule file.
        for (Map.Entry<String, ConfigValue> e : root.root().entrySet()) {
            if (!e.getKey().equals("tailguard")) {
                throw unknown(where, e.getKey(), Set.of("tailguard"));
            }
        }
        ConfigValue tg = root.root().get("tailguard");
        if (tg.valueType() != ConfigValueType.OBJECT) {
            throw new IllegalArgumentException(where + ": tailguard: must be an object holding schedule { ... }");
        }
        for (String key : ((ConfigObject) tg).keySet()) {
            if (!key.equals("schedule")) {
                throw unknown(where, "tailguard." + key, Set.of("schedule"));
            }
        }
        ConfigValue v = ((ConfigObject) tg).get("schedule");
        if (v.valueType() != ConfigValueType.OBJECT) {
            throw new IllegalArgumentException(where + ": " + ROOT + ": must be an object { version = ..., kind = ... }");
        }
        return fromObject((ConfigObject) v, ROOT, where);
    }

    /**
     * Reads a schedule from a parsed object (the contents of a {@code tailguard.schedule} block),
     * so a schedule can live inside a larger configuration; {@code path} is the object's key path.
     */
    public static Schedule fromConfig(Config schedule, String path, String where) {
        return fromObject(schedule.root(), path, where);
    }

    private static Schedule fromObject(ConfigObject obj, String path, String where) {
        String kindText = requireString(obj, "kind", path, where);
        Kind kind = switch (kindText) {
            case "dense" -> Kind.DENSE;
            case "fixed" -> Kind.FIXED;
            case "bins" -> Kind.BINS;
            default -> throw new IllegalArgumentException(where + ": " + path + ".kind: unknown kind '" + kindText + "' (allowed: dense, fixed, bins)");
        };
        Set<String> allowed = switch (kind) {
            case DENSE -> Set.of("version", "kind", "bin-width", "dense-layers");
            case FIXED -> Set.of("version", "kind", "bin-width", "dense-layers", "budget");
            case BINS -> Set.of("version", "kind", "bin-width", "dense-layers", "bins");
        };
        for (String key : obj.keySet()) {
            if (!allowed.contains(key)) {
                throw unknown(where, path + "." + key, allowed, "kind = " + kind.key());
            }
        }
        ConfigValue versionValue = obj.get("version");
        if (versionValue == null) {
            throw new IllegalArgumentException(where + ": " + path + ".version: missing (a positive integer)");
        }
        long version = integer(versionValue, path + ".version", where, "a positive integer");
        if (version <= 0) {
            throw new IllegalArgumentException(where + ": " + path + ".version: must be a positive integer, got " + version);
        }
        int binWidth = DEFAULT_BIN_WIDTH;
        ConfigValue bw = obj.get("bin-width");
        if (bw != null) {
            long w = integer(bw, path + ".bin-width", where, Budgets.BIN_WIDTH_RULE);
            if (w > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(where + ": " + path + ".bin-width: must be " + Budgets.BIN_WIDTH_RULE + ", got " + w);
            }
            checkBinWidth(path + ".bin-width", w, where);
            binWidth = (int) w;
        }
        SortedSet<Integer> dense = denseLayers(obj.get("dense-layers"), path + ".dense-layers", where);
        return switch (kind) {
            case DENSE -> new Schedule(Kind.DENSE, binWidth, new int[] {Integer.MAX_VALUE}, version, dense);
            case FIXED -> {
                ConfigValue b = obj.get("budget");
                if (b == null) {
                    throw new IllegalArgumentException(where + ": " + path + ".budget: missing (kind = fixed needs a budget in tokens)");
                }
                int budget = budget(b, path + ".budget", where);
                yield new Schedule(Kind.FIXED, binWidth, new int[] {budget}, version, dense);
            }
            case BINS -> new Schedule(Kind.BINS, binWidth, parseBins(obj.get("bins"), binWidth, path + ".bins", where), version, dense);
        };
    }

    /** The dense-layers list: absent is the default; else distinct layer indices ≥ 0 (may be empty). */
    private static SortedSet<Integer> denseLayers(ConfigValue value, String path, String where) {
        if (value == null) {
            return DEFAULT_DENSE_LAYERS;
        }
        if (value.valueType() != ConfigValueType.LIST) {
            throw new IllegalArgumentException(where + ": " + path + ": must be a list of layer indices, e.g. [0, 1], got " + typeName(value));
        }
        SortedSet<Integer> layers = new TreeSet<>();
        ConfigList list = (ConfigList) value;
        for (int i = 0; i < list.size(); i++) {
            long layer = integer(list.get(i), path + "[" + i + "]", where, "a layer index >= 0");
            if (layer < 0 || layer > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(where + ": " + path + "[" + i + "]: must be a layer index >= 0, got " + layer);
            }
            if (!layers.add((int) layer)) {
                throw new IllegalArgumentException(where + ": " + path + "[" + i + "]: layer " + layer + " is listed twice");
            }
        }
        return layers.equals(DEFAULT_DENSE_LAYERS) ? DEFAULT_DENSE_LAYERS : Collections.unmodifiableSortedSet(layers);
    }

    private static int[] parseBins(ConfigValue value, int binWidth, String path, String where) {
        if (value == null) {
            throw new IllegalArgumentException(where + ": " + path + ": missing (kind = bins needs a list of { start, end, budget })");
        }
        if (value.valueType() != ConfigValueType.LIST) {
            throw new IllegalArgumentException(where + ": " + path + ": must be a list of { start, end, budget }, got " + typeName(value));
        }
        ConfigList list = (ConfigList) value;
        if (list.isEmpty()) {
            throw new IllegalArgumentException(where + ": " + path + ": at least one bin is needed");
        }
        List<Integer> budgets = new ArrayList<>();
        long expectedStart = 0;
        int previousBudget = 0;
        for (int i = 0; i < list.size(); i++) {
            String p = path + "[" + i + "]";
            ConfigValue item = list.get(i);
            if (item.valueType() != ConfigValueType.OBJECT) {
                throw new IllegalArgumentException(where + ": " + p + ": must be an object { start, end, budget }, got " + typeName(item));
            }
            ConfigObject bin = (ConfigObject) item;
            Set<String> allowed = Set.of("start", "end", "budget");
            for (String key : bin.keySet()) {
                if (!allowed.contains(key)) {
                    throw unknown(where, p + "." + key, allowed);
                }
            }
            ConfigValue startValue = bin.get("start");
            if (startValue == null) {
                throw new IllegalArgumentException(where + ": " + p + ".start: missing (the bin's first position)");
            }
            long start = integer(startValue, p + ".start", where, "a position in tokens");
            if (start != expectedStart) {
                String reason = i == 0
                        ? "the first bin must start at 0, got " + start
                        : start > expectedStart
                        ? "gap: starts at " + start + " but the previous bin ends at " + expectedStart
                        : "overlap: starts at " + start + " but the previous bin ends at " + expectedStart;
                throw new IllegalArgumentException(where + ": " + p + ".start: " + reason);
            }
            ConfigValue endValue = bin.get("end");
            boolean last = i == list.size() - 1;
            long end;
            if (endValue == null || endValue.valueType() == ConfigValueType.NULL) {
                if (!last) {
                    throw new IllegalArgumentException(where + ": " + p + ".end: missing; only the last bin may be open-ended");
                }
                end = start + binWidth;
            } else {
                end = integer(endValue, p + ".end", where, "a position in tokens");
                if (end <= start) {
                    throw new IllegalArgumentException(where + ": " + p + ".end: must be greater than start " + start + ", got " + end);
                }
                if ((end - start) % binWidth != 0) {
                    throw new IllegalArgumentException(where + ": " + p + ".end: the bin [" + start + ", " + end
                            + ") must span a multiple of bin-width " + binWidth);
                }
            }
            ConfigValue budgetValue = bin.get("budget");
            if (budgetValue == null) {
                throw new IllegalArgumentException(where + ": " + p + ".budget: missing (KV budget in tokens)");
            }
            int budget = budget(budgetValue, p + ".budget", where);
            if (budget < previousBudget) {
                throw new IllegalArgumentException(decreasing(p + ".budget", budget, path + "[" + (i - 1) + "].budget", previousBudget, where));
            }
            for (long s = start; s < end; s += binWidth) {
                budgets.add(budget);
                if (budgets.size() > 1_000_000) {
                    throw new IllegalArgumentException(where + ": " + p + ".end: too many bins (more than 1,000,000 of width " + binWidth + ")");
                }
            }
            previousBudget = budget;
            expectedStart = end;
        }
        return budgets.stream().mapToInt(Integer::intValue).toArray();
    }

    private static String requireString(ConfigObject obj, String key, String path, String where) {
        ConfigValue v = obj.get(key);
        if (v == null) {
            throw new IllegalArgumentException(where + ": " + path + "." + key + ": missing (dense, fixed or bins)");
        }
        if (v.valueType() != ConfigValueType.STRING) {
            throw new IllegalArgumentException(where + ": " + path + "." + key + ": must be one of dense, fixed, bins, got " + typeName(v));
        }
        return (String) v.unwrapped();
    }

    private static long integer(ConfigValue v, String path, String where, String what) {
        Object u = v.unwrapped();
        if (v.valueType() == ConfigValueType.NUMBER) {
            Number n = (Number) u;
            if (n instanceof Integer || n instanceof Long) {
                return n.longValue();
            }
            double d = n.doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                return (long) d;
            }
            throw new IllegalArgumentException(where + ": " + path + ": must be an integer (" + what + "), got " + u);
        }
        throw new IllegalArgumentException(where + ": " + path + ": must be an integer (" + what + "), got " + typeName(v));
    }

    private static int budget(ConfigValue v, String path, String where) {
        long b = integer(v, path, where, "a KV budget in tokens, " + Budgets.RULE);
        if (b > Integer.MAX_VALUE || b < Integer.MIN_VALUE) {
            throw new IllegalArgumentException(where + ": " + path + ": budget " + b + " is out of range");
        }
        checkBudget(path, (int) b, where);
        return (int) b;
    }

    private static void checkBudget(String path, int budget, String where) {
        Budgets.check(where.isEmpty() ? path : where + ": " + path, budget);
    }

    private static void checkBinWidth(String path, long binWidth, String where) {
        if (!Budgets.validBinWidth(binWidth)) {
            String prefix = where.isEmpty() ? "" : where + ": ";
            throw new IllegalArgumentException(prefix + path + ": must be " + Budgets.BIN_WIDTH_RULE + ", got " + binWidth);
        }
    }

    private static String decreasing(String path, int budget, String previousPath, int previous, String where) {
        String prefix = where.isEmpty() ? "" : where + ": ";
        return prefix + path + ": budget " + budget + " is smaller than " + previousPath + " = " + previous
                + " (budgets must not decrease with position)";
    }

    private static IllegalArgumentException unknown(String where, String path, Set<String> allowed) {
        return unknown(where, path, allowed, null);
    }

    private static IllegalArgumentException unknown(String where, String path, Set<String> allowed, String context) {
        String[] sorted = allowed.toArray(new String[0]);
        Arrays.sort(sorted);
        return new IllegalArgumentException(where + ": " + path + ": unknown key (allowed"
                + (context == null ? "" : " with " + context) + ": " + String.join(", ", sorted) + ")");
    }

    private static String typeName(ConfigValue v) {
        return switch (v.valueType()) {
            case OBJECT -> "an object";
            case LIST -> "a list";
            case NUMBER -> "the number " + v.unwrapped();
            case BOOLEAN -> "the boolean " + v.unwrapped();
            case NULL -> "null";
            case STRING -> "the string '" + v.unwrapped() + "'";
        };
    }

    /** A Typesafe Config error as one line, without the exception's class name. */
    private static String oneLine(String where, ConfigException e) {
        String msg = String.valueOf(e.getMessage()).replaceAll("\\s+", " ").trim();
        if (msg.startsWith(where + ": ")) {
            msg = msg.substring(where.length() + 2).replaceFirst("^(\\d+): ", "line $1: ");
        }
        return where + ": " + msg;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Schedule s && s.kind == kind && s.binWidth == binWidth && s.version == version
                && Arrays.equals(s.budgets, budgets) && s.denseLayers.equals(denseLayers);
    }

    @Override
    public int hashCode() {
        return (((kind.hashCode() * 31 + binWidth) * 31 + Long.hashCode(version)) * 31 + Arrays.hashCode(budgets)) * 31
                + denseLayers.hashCode();
    }

    @Override
    public String toString() {
        String dense = denseLayers.equals(DEFAULT_DENSE_LAYERS) ? "" : ", dense layers " + denseLayers;
        return switch (kind) {
            case DENSE -> "Schedule[dense" + dense + ", v" + version + "]";
            case FIXED -> "Schedule[fixed " + budgets[0] + dense + ", v" + version + "]";
            case BINS -> "Schedule[bins of " + binWidth + ": " + Arrays.toString(budgets) + dense + ", v" + version + "]";
        };
    }
}
