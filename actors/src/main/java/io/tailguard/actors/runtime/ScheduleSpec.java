package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;

/** A {@link Schedule} as a message field: its kind, version, bin width and budgets per bin. */
public record ScheduleSpec(String kind, long version, int binWidth, int[] budgets) implements Wire {

    public static ScheduleSpec of(Schedule s) {
        return new ScheduleSpec(s.kind().name(), s.version(), s.binWidth(), s.budgets());
    }

    public Schedule toSchedule() {
        Schedule s = switch (Schedule.Kind.valueOf(kind)) {
            case DENSE -> Schedule.dense();
            case FIXED -> Schedule.fixed(budgets[0]);
            case BINS -> Schedule.ofBins(binWidth, budgets);
        };
        return version == s.version() ? s : s.withVersion(version);
    }
}
