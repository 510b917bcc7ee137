package io.tailguard.actors.runtime;

import com.google.gson.Gson;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a controller must not forget across a move to another node: the next group id to issue,
 * every group issued but not yet delivered, and the live tuning: the settings version, every live
 * key whose value a `tune` set away from the configuration (tuned, full key names to values) and the
 * configured value it replaced (tunedFrom; an edit of the watched file changes the configuration
 * itself, so it is no tuning); keys by their full {@link LiveKey} names. Written atomically beside
 * the checkpoint store, shortly after a change (a kill can lose the last moments: then the cursor is
 * behind and some delivered groups count as open, so they are issued again, the same prompts, and
 * the buffer drops the duplicates; no group is lost). A state file from before the tuning was kept
 * reads as no tuning.
 */
record ControllerState(long nextGroup, long[] openGroups, long settingsVersion, Map<String, String> tuned,
                       Map<String, String> tunedFrom) {
    ControllerState {
        tuned = nonNull(tuned);
        tunedFrom = nonNull(tunedFrom);
    }

    private static Map<String, String> nonNull(Map<String, String> m) {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        if (m != null) {
            m.forEach((k, v) -> {
                if (k != null && v != null) {
                    out.put(k, v);
                }
            });
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    private static final Gson GSON = new Gson();

    static Path file(RunSettings s) {
        return s.train().out().resolve("controller").resolve("state.json");
    }

    static ControllerState read(RunSettings s) {
        Path f = file(s);
        if (!Files.isRegularFile(f)) {
            return null;
        }
        try {
            ControllerState st = GSON.fromJson(Files.readString(f), ControllerState.class);
            return st == null || st.openGroups() == null ? null : st;
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException(f + ": unreadable controller state (" + e.getMessage() + "); remove it to start the prompt stream over");
        }
    }

    /** The file's text (the controller's {@link StateWriter} writes it atomically, off the actor's thread). */
    String json() {
        return GSON.toJson(this);
    }
}
