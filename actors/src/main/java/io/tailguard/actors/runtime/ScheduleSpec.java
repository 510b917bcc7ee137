package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;

/**
 * A {@link Schedule} as a message field: its kind, version, bin width, budgets per bin and dense
 * layers (null: the default ones).
 */
public record ScheduleSpec(String kind, long version, int binWidth, int[] budgets, int[] denseLayers) implements Wire {

    /** The default dense layers. */
    public ScheduleSpec(String kind, long version, int binWidth, int[] budgets) {
        this(kind, version, binWidth, budgets, null);
    }

    public static ScheduleSpec of(Schedule s) {
        int[] dense = s.denseLayers().equals(Schedule.DEFAULT_DENSE_LAYERS) ? null
                : s.denseLayers().stream().mapToInt(Integer::intValue).toArray();
        return new ScheduleSpec(s.kind().name(), s.version(), s.binWidth(), s.budgets(), dense);
    }

    public Schedule toSchedule() {
        Schedule s = switch (Schedule.Kind.valueOf(kind)) {
            case DENSE -> Schedule.dense();
            case FIXED -> Schedule.fixed(budgets[0]);
            case BINS -> Schedule.ofBins(binWidth, budgets);
        };
        if (denseLayers != null) {
            s = s.withDenseLayers(java.util.Arrays.stream(denseLayers).boxed().collect(java.util.stream.Collectors.toSet()));
        }
        return version == s.version() ? s : s.withVersion(version);
    }
}
