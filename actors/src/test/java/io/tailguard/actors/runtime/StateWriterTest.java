package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The controller's file writer: coalesced, newest wins, flushed on the caller's thread. */
class StateWriterTest {
    @Test
    void aBurstIsOneWriteOfTheNewestTextAndFlushWritesWhatIsPending(@TempDir Path tmp) throws Exception {
        List<Runnable> queued = new ArrayList<>();
        StateWriter w = new StateWriter(queued::add, org.slf4j.LoggerFactory.getLogger(StateWriterTest.class));
        Path f = tmp.resolve("controller/state.json");
        AtomicInteger computed = new AtomicInteger();
        List<CompletableFuture<Void>> written = new ArrayList<>();
        for (int i = 1; i <= 5; i++) {
            int n = i;
            written.add(w.submit(f, () -> {
                computed.incrementAndGet();
                return "state " + n;
            }));
        }
        assertEquals(1, queued.size(), "one write scheduled for the burst");
        assertFalse(Files.exists(f), "nothing written on the submitting thread");
        assertTrue(written.stream().noneMatch(CompletableFuture::isDone));
        queued.get(0).run();
        assertTrue(written.stream().allMatch(CompletableFuture::isDone), "every text of the burst is written (the newest replaced them)");
        assertEquals("state 5", Files.readString(f));
        assertEquals(1, computed.get(), "only the newest text is computed");

        CompletableFuture<Void> six = w.submit(f, () -> "state 6");
        w.flush(); // the controller stops: written now, here
        assertTrue(six.isDone());
        assertEquals("state 6", Files.readString(f));
        queued.get(1).run(); // the scheduled drain finds nothing left
        assertEquals("state 6", Files.readString(f));
        try (var files = Files.list(f.getParent())) {
            assertEquals(1, files.count(), "no temporary file left");
        }
    }

    @Test
    void theControllersFilesAreOneScheduledWriteForABurstOfChangesAndTheScheduleOnANewVersion(@TempDir Path tmp) throws Exception {
        RunSettings s = TuningBookTest.settings("tailguard.train.out = \"" + tmp.resolve("run") + "\"");
        List<Runnable> queued = new ArrayList<>();
        ControllerFiles files = new ControllerFiles(s, queued::add, org.slf4j.LoggerFactory.getLogger(StateWriterTest.class));
        assertTrue(files.changed(), "the first change schedules a write");
        assertFalse(files.changed(), "the next ones ride on it");
        assertFalse(files.changed());
        files.state(new ControllerState(9, new long[] {4, 5}, 2, java.util.Map.of(), java.util.Map.of()));
        assertTrue(files.changed(), "after the write, a change schedules the next one");
        queued.forEach(Runnable::run);
        ControllerState back = ControllerState.read(s);
        assertEquals(9, back.nextGroup());
        assertEquals(2, back.openGroups().length);
        assertEquals(2, back.settingsVersion());

        io.tailguard.rollout.sparse.Schedule dense = io.tailguard.rollout.sparse.Schedule.dense();
        files.schedule(dense);
        files.schedule(dense); // the same version: no second write
        assertEquals(2, queued.size());
        queued.get(1).run();
        assertEquals(dense.toHocon(), Files.readString(ControllerFiles.schedule(s)));
    }
}
