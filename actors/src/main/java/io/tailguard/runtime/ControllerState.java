package io.tailguard.runtime;

import com.google.gson.Gson;
import com.google.gson.JsonParseException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a controller must not forget across a move to another node: the next group id to issue and
 * every group issued but not yet delivered. Written atomically beside the checkpoint store.
 */
record ControllerState(long nextGroup, long[] openGroups) {
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
        } catch (IOException | JsonParseException e) {
            throw new IllegalStateException(f + ": unreadable controller state (" + e.getMessage() + "); remove it to start the prompt stream over");
        }
    }

    static void write(RunSettings s, ControllerState st) throws IOException {
        io.tailguard.model.io.AtomicFiles.writeString(file(s), GSON.toJson(st));
    }
}
