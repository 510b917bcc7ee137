package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The controller's files: state written off the caller's thread (coalesced, newest wins, flushed on
 * the caller's thread waiting for a write in flight, a failed write reported), the schedule on it.
 */
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
        assertEquals(dense.toHocon(), Files.readString(ControllerFiles.schedule(s)), "written before schedule() returns");
        Files.writeString(ControllerFiles.schedule(s), "edited");
        files.schedule(dense); // the same version: no second write
        assertEquals("edited", Files.readString(ControllerFiles.schedule(s)));
        assertEquals(1, queued.size(), "the schedule is not written off the caller's thread");
    }

    @Test
    void theCompressedOptionsSchedulesRoundTripAndAreWrittenOnANewVersion(@TempDir Path tmp) throws Exception {
        RunSettings s = TuningBookTest.settings("tailguard.train.out = \"" + tmp.resolve("run") + "\"");
        ControllerFiles files = new ControllerFiles(s, Runnable::run, org.slf4j.LoggerFactory.getLogger(StateWriterTest.class));
        assertTrue(ControllerFiles.readOptionSchedules(s).isEmpty(), "none written: a fresh start");
        io.tailguard.rollout.sparse.Schedule q4 = io.tailguard.rollout.sparse.Schedule.ofBins(128, new int[] {48, 64, 96}).withVersion(5);
        io.tailguard.rollout.sparse.Schedule vnm = io.tailguard.rollout.sparse.Schedule.fixed(64).withVersion(2);
        java.util.Map<String, io.tailguard.rollout.sparse.Schedule> saved = new java.util.LinkedHashMap<>();
        saved.put("rtn 4-bit", q4);
        saved.put("vnm 64:2:5", vnm);
        files.optionSchedules(saved);
        java.util.Map<String, io.tailguard.rollout.sparse.Schedule> back = ControllerFiles.readOptionSchedules(s);
        assertEquals(saved.keySet(), back.keySet());
        assertEquals(q4.toHocon(), back.get("rtn 4-bit").toHocon());
        assertEquals(vnm.toHocon(), back.get("vnm 64:2:5").toHocon());
        Path file = ControllerFiles.optionSchedules(s);
        Files.writeString(file, "edited");
        files.optionSchedules(saved); // the same versions: no second write
        assertEquals("edited", Files.readString(file));
        IllegalArgumentException bad = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ControllerFiles.readOptionSchedules(s));
        assertTrue(bad.getMessage().startsWith(file.toString()), bad.getMessage());
        saved.put("rtn 4-bit", q4.withVersion(6));
        files.optionSchedules(saved); // a new version: written
        assertEquals(6, ControllerFiles.readOptionSchedules(s).get("rtn 4-bit").version());
    }

    /**
     * A new schedule version is on disk when schedule() returns, with the io executor never running:
     * a lease sent after it never carries a version a restarted controller would not resume. A failed
     * write is logged at error level and done at the next call with the same version.
     */
    @Test
    void aNewScheduleVersionIsOnDiskBeforeScheduleReturnsAndAFailedWriteIsTriedAgain(@TempDir Path tmp) throws Exception {
        RunSettings s = TuningBookTest.settings("tailguard.train.out = \"" + tmp.resolve("run") + "\"");
        Recording log = new Recording();
        ControllerFiles files = new ControllerFiles(s, r -> {
            throw new AssertionError("the schedule must not wait for the io executor");
        }, log.logger());
        io.tailguard.rollout.sparse.Schedule v1 = io.tailguard.rollout.sparse.Schedule.fixed(64).withVersion(1);
        io.tailguard.rollout.sparse.Schedule v2 = io.tailguard.rollout.sparse.Schedule.fixed(96).withVersion(2);
        Path file = ControllerFiles.schedule(s);
        files.schedule(v1);
        assertEquals(v1.toHocon(), Files.readString(file));
        files.schedule(v2);
        assertEquals(v2.toHocon(), Files.readString(file));
        assertTrue(log.errors.isEmpty(), log.errors.toString());

        // the controller directory cannot be made: logged, and the same version is written once it can
        Files.delete(file);
        Files.delete(file.getParent());
        Files.writeString(file.getParent(), "in the way");
        io.tailguard.rollout.sparse.Schedule v3 = io.tailguard.rollout.sparse.Schedule.fixed(128).withVersion(3);
        files.schedule(v3);
        assertEquals(1, log.errors.size(), "logged at error level");
        assertTrue(log.errors.get(0).contains("schedule v3"), log.errors.get(0));
        Files.delete(file.getParent());
        files.schedule(v3);
        assertEquals(v3.toHocon(), Files.readString(file));
    }

    /**
     * flush() returns only once the write the io thread already took is done: the controller's last
     * state is on disk when its PostStop ends (and the process may exit).
     */
    @Test
    void flushWaitsForTheWriteInFlight(@TempDir Path tmp) throws Exception {
        ExecutorService io = Executors.newSingleThreadExecutor();
        try {
            StateWriter w = new StateWriter(io, org.slf4j.LoggerFactory.getLogger(StateWriterTest.class));
            Path f = tmp.resolve("controller/state.json");
            CountDownLatch taken = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            CompletableFuture<Void> written = w.submit(f, () -> {
                taken.countDown();
                await(release);
                return "last state";
            });
            taken.await(); // the io thread is writing the newest text: nothing is pending
            CompletableFuture<Void> flushed = new CompletableFuture<>();
            Thread flusher = new Thread(() -> {
                w.flush();
                flushed.complete(null);
            }, "flusher");
            flusher.start();
            // the flusher either returns (wrong) or waits for the write in flight: whichever comes first
            while (!flushed.isDone() && flusher.getState() != Thread.State.WAITING) {
                Thread.onSpinWait();
            }
            assertFalse(flushed.isDone(), "flush returned while the newest state was still being written");
            assertFalse(written.isDone());
            release.countDown();
            flusher.join();
            assertTrue(written.isDone());
            assertEquals("last state", Files.readString(f));

            // a text submitted while one is in flight: flush writes it, after the one in flight, and waits for both
            CountDownLatch taken2 = new CountDownLatch(1);
            CountDownLatch release2 = new CountDownLatch(1);
            w.submit(f, () -> {
                taken2.countDown();
                await(release2);
                return "older";
            });
            taken2.await();
            CompletableFuture<Void> newer = w.submit(f, () -> "newer");
            Thread flusher2 = new Thread(w::flush, "flusher2");
            flusher2.start();
            release2.countDown();
            flusher2.join();
            assertTrue(newer.isDone());
            assertEquals("newer", Files.readString(f));
        } finally {
            io.shutdownNow();
        }
    }

    /** A failed write completes every future waiting on it exceptionally, naming the file, logged at error level. */
    @Test
    void aFailedWriteCompletesItsFuturesExceptionally(@TempDir Path tmp) throws Exception {
        List<Runnable> queued = new ArrayList<>();
        Recording log = new Recording();
        StateWriter w = new StateWriter(queued::add, log.logger());
        Path dir = tmp.resolve("controller");
        Files.writeString(dir, "a file where the directory should be");
        Path f = dir.resolve("state.json");
        CompletableFuture<Void> replaced = w.submit(f, () -> "1");
        CompletableFuture<Void> newest = w.submit(f, () -> "2");
        queued.get(0).run();
        for (CompletableFuture<Void> c : List.of(replaced, newest)) {
            ExecutionException e = assertThrows(ExecutionException.class, c::get);
            assertTrue(e.getCause() instanceof IOException, e.toString());
            assertTrue(e.getCause().getMessage().contains(f.toString()), e.getCause().getMessage());
        }
        assertEquals(1, log.errors.size(), "one write, one error");
        assertTrue(log.errors.get(0).contains(f.toString()), log.errors.get(0));

        Files.delete(dir); // the disk is fine again: the next submission is written
        CompletableFuture<Void> again = w.submit(f, () -> "3");
        queued.get(1).run();
        again.get();
        assertEquals("3", Files.readString(f));
    }

    /**
     * A write that fails is tried again after a backoff that doubles (waits recorded, never slept);
     * one that succeeds on a retry is no failure; one that fails every try is one failure of the
     * streak, which a success ends, and the bound-th failure in a row stops the run with one line
     * naming the key. The schedule file's failed writes count in the same streak.
     */
    @Test
    void aFailedWriteIsRetriedWithBackoffAndFailuresInARowStopTheRun(@TempDir Path tmp) throws Exception {
        List<Runnable> queued = new ArrayList<>();
        Recording log = new Recording();
        List<java.time.Duration> waits = new ArrayList<>();
        Path dir = tmp.resolve("controller");
        Files.writeString(dir, "a file where the directory should be");
        Path f = dir.resolve("state.json");
        // the disk comes back during the second wait (once)
        java.util.concurrent.atomic.AtomicBoolean comesBack = new java.util.concurrent.atomic.AtomicBoolean(true);
        StateWriter.Retry retry = new StateWriter.Retry(3, java.time.Duration.ofMillis(500), d -> {
            waits.add(d);
            if (waits.size() == 2 && comesBack.getAndSet(false)) {
                try {
                    Files.delete(dir);
                } catch (IOException x) {
                    throw new java.io.UncheckedIOException(x);
                }
            }
        });
        AtomicInteger counted = new AtomicInteger();
        List<String> stops = new ArrayList<>();
        FailureStreak streak = new FailureStreak("tailguard.controller.max-state-write-failures", 2, log.logger(),
                counted::incrementAndGet, stops::add);
        StateWriter w = new StateWriter(queued::add, log.logger(), retry, streak);
        CompletableFuture<Void> first = w.submit(f, () -> "1");
        queued.remove(0).run();
        first.get(); // written on the third try
        assertEquals("1", Files.readString(f));
        assertEquals(List.of(java.time.Duration.ofMillis(500), java.time.Duration.ofMillis(1000)), waits);
        assertEquals(0, counted.get(), "a write that succeeded on a retry is no failure");
        assertEquals(new FailureStreak.View(0, 0, 2, null), streak.view());

        // now it fails every try: one failure per write, after 3 tries (2 waits each)
        Files.delete(f);
        Files.delete(dir);
        Files.writeString(dir, "in the way again");
        waits.clear();
        CompletableFuture<Void> second = w.submit(f, () -> "2");
        queued.remove(0).run();
        ExecutionException e = assertThrows(ExecutionException.class, second::get);
        assertTrue(e.getCause().getMessage().contains(f.toString()), e.getCause().getMessage());
        assertEquals(2, waits.size(), "3 tries");
        assertEquals(1, counted.get());
        assertEquals(1, streak.view().inRow());
        assertEquals(List.of(), stops);
        assertTrue(log.errors.get(log.errors.size() - 1).startsWith("cannot write " + f + " after 3 tries: FileAlreadyExistsException: ")
                && log.errors.get(log.errors.size() - 1).contains("(1 of 2 failures in a row"), log.errors.toString());

        // a success ends the streak: the schedule file's write (same streak) succeeds once the directory is back
        RunSettings s = TuningBookTest.settings("tailguard.train.out = \"" + tmp.resolve("run") + "\"");
        ControllerFiles files = new ControllerFiles(s, queued::add, log.logger(), StateWriter.Retry.NONE, streak);
        files.schedule(io.tailguard.rollout.sparse.Schedule.fixed(64).withVersion(1));
        assertEquals(0, streak.view().inRow(), "a write that succeeds ends the streak");
        assertEquals(1, files.failures().total());

        // two in a row: the run stops, with one line naming the key, the bound and the last error
        Path sched = ControllerFiles.schedule(s);
        Files.delete(sched);
        Files.delete(sched.getParent());
        Files.writeString(sched.getParent(), "in the way");
        files.schedule(io.tailguard.rollout.sparse.Schedule.fixed(96).withVersion(2));
        CompletableFuture<Void> third = w.submit(f, () -> "3");
        queued.remove(0).run();
        assertThrows(ExecutionException.class, third::get);
        assertEquals(3, counted.get());
        assertEquals(1, stops.size(), stops.toString());
        String line = stops.get(0);
        assertTrue(line.startsWith("the run stops: cannot write " + f) && line.endsWith("(2 failures in a row; "
                + "tailguard.controller.max-state-write-failures = 2)"), line);
        FailureStreak.View v = files.failures();
        assertEquals(3, v.total());
        assertEquals(2, v.inRow());
        assertEquals(2, v.bound());
        assertTrue(v.lastError().contains(f.toString()), v.lastError());
    }

    static void await(CountDownLatch l) {
        try {
            l.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** A logger that keeps its error-level messages (with the arguments filled in). */
    static final class Recording {
        final List<String> errors = new java.util.concurrent.CopyOnWriteArrayList<>();

        org.slf4j.Logger logger() {
            return (org.slf4j.Logger) java.lang.reflect.Proxy.newProxyInstance(Recording.class.getClassLoader(),
                    new Class<?>[] {org.slf4j.Logger.class}, (proxy, m, args) -> {
                        if (m.getName().equals("error") && args != null && args[0] instanceof String format) {
                            Object[] rest = java.util.Arrays.copyOfRange(args, 1, args.length);
                            if (rest.length == 1 && rest[0] instanceof Object[] varargs) {
                                rest = varargs;
                            }
                            errors.add(org.slf4j.helpers.MessageFormatter.arrayFormat(format, rest).getMessage());
                        }
                        if (m.getReturnType() == boolean.class) {
                            return true;
                        }
                        return m.getName().equals("getName") ? "recording" : null;
                    });
        }
    }
}
