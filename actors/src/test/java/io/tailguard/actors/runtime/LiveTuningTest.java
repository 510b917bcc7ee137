package io.tailguard.actors.runtime;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.CliBadInputTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tune` and config-file edits against a running controller node. */
class LiveTuningTest {
    static JsonObject status(String url) {
        CliBadInputTest.Run r = CliBadInputTest.cli("status", "--admin", url, "--json");
        assertEquals(0, r.code(), r.err());
        return JsonParser.parseString(r.out().strip()).getAsJsonObject();
    }

    @Test
    void tuneAndFileEditsAreValidatedVersionedAndApplied(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        int port = io.tailguard.actors.integration.Ports.freePort();
        Path file = tmp.resolve("run.conf");
        Files.writeString(file, "tailguard.controller.tau = 0.86\ntailguard.controller.window = 1s\n");
        Config c = ConfigFactory.parseFile(file.toFile())
                .withFallback(ConfigFactory.parseString("tailguard.admin.port = " + port + "\ntailguard.metrics.port = 0\n"
                        + "tailguard.train.out = \"" + tmp.resolve("run") + "\""))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, file.toString());
        String url = "http://127.0.0.1:" + port;
        try (TailguardNode node = new TailguardNode(c, s, Set.of("controller"), init, "cpu", true, null)) {
            node.watch(file);
            JsonObject first = awaitStatus(url);
            long v0 = first.get("schedule_version").getAsLong();
            assertEquals(1, first.getAsJsonArray("members").size(), first.toString());
            assertTrue(first.has("rollout_tokens_per_s") && first.has("buffer_groups") && first.has("budgets"), first.toString());

            CliBadInputTest.Run ok = CliBadInputTest.cli("tune", "--admin", url, "--json", "tau=0.9");
            assertEquals(0, ok.code(), ok.err());
            JsonObject j = JsonParser.parseString(ok.out().strip()).getAsJsonObject();
            assertTrue(j.get("accepted").getAsBoolean());
            assertTrue(j.get("persisted").getAsBoolean(), j.toString());
            assertEquals(v0 + 1, j.get("schedule_version").getAsLong());
            assertEquals(0.9, status(url).get("tau").getAsDouble());
            // the new schedule version was written before the answer (and before any lease could carry it)
            assertTrue(Files.readString(tmp.resolve("run/controller/schedule.conf")).contains("version = " + (v0 + 1)));

            CliBadInputTest.Run bad = CliBadInputTest.cli("tune", "--admin", url, "tau=2");
            assertEquals(2, bad.code());
            assertTrue(bad.err().contains("tailguard.controller.tau: must be in (0, 1)"), bad.err());
            assertEquals(0.9, status(url).get("tau").getAsDouble());
            assertEquals(v0 + 1, status(url).get("schedule_version").getAsLong());

            // the same through the watched file: a bad value is refused, a good one applied
            Files.writeString(file, "tailguard.controller.tau = 2\ntailguard.controller.window = 1s\n");
            bump(file);
            Thread.sleep(2500);
            assertEquals(0.9, status(url).get("tau").getAsDouble());
            Files.writeString(file, "tailguard.controller.tau = 0.8\ntailguard.controller.window = 1s\n");
            bump(file);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (status(url).get("tau").getAsDouble() != 0.8 && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            JsonObject after = status(url);
            assertEquals(0.8, after.get("tau").getAsDouble());
            assertEquals(v0 + 2, after.get("schedule_version").getAsLong());
        }
    }

    /** A controller-only node on the run store tmp/run, configured by file, with the admin endpoint on a fresh port. */
    record ControllerNode(TailguardNode node, String url) implements AutoCloseable {
        static ControllerNode start(Path tmp, Path file, Path init) throws Exception {
            int port = io.tailguard.actors.integration.Ports.freePort();
            Config c = ConfigFactory.parseFile(file.toFile())
                    .withFallback(ConfigFactory.parseString("tailguard.admin.port = " + port + "\ntailguard.metrics.port = 0\n"
                            + "tailguard.train.out = \"" + tmp.resolve("run") + "\""))
                    .withFallback(ConfigFactory.load()).resolve();
            TailguardNode node = new TailguardNode(c, RunSettings.parse(c, file.toString()), Set.of("controller"), init, "cpu", true, null);
            node.watch(file);
            String url = "http://127.0.0.1:" + port;
            awaitStatus(url);
            return new ControllerNode(node, url);
        }

        JsonObject tune(String... kv) {
            String[] args = new String[kv.length + 4];
            args[0] = "tune";
            args[1] = "--admin";
            args[2] = url;
            args[3] = "--json";
            System.arraycopy(kv, 0, args, 4, kv.length);
            CliBadInputTest.Run r = CliBadInputTest.cli(args);
            assertEquals(0, r.code(), r.err());
            JsonObject j = JsonParser.parseString(r.out().strip()).getAsJsonObject();
            assertTrue(j.get("accepted").getAsBoolean(), j.toString());
            return j;
        }

        @Override
        public void close() {
            node.close();
        }
    }

    @Test
    void tuningOutlivesTheControllerAndAConfigurationChangedSinceWins(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path file = tmp.resolve("run.conf");
        String rest = "tailguard.controller.window = 1s\ntailguard.learner.lr = 2e-4\ntailguard.buffer.staleness = 2\n";
        Files.writeString(file, "tailguard.controller.tau = 0.86\n" + rest);
        Path state = tmp.resolve("run/controller/state.json");
        try (ControllerNode a = ControllerNode.start(tmp, file, init)) {
            assertEquals(1, a.tune("tau=0.9", "lr=5e-5").get("settings_version").getAsLong());
            // set back to its configured value, a key is no longer tuned; then tuned again
            assertEquals(2, a.tune("lr=2e-4").get("settings_version").getAsLong());
            assertEquals(3, a.tune("lr=7e-5").get("settings_version").getAsLong());
            assertEquals(4, a.tune("staleness=1").get("settings_version").getAsLong());
            assertEquals(5, a.tune("staleness=2").get("settings_version").getAsLong());
            // an edit of the watched file changes the configuration itself; a tune after it tunes away from the new value
            Files.writeString(file, "tailguard.controller.tau = 0.86\n" + rest + "tailguard.compression.probe-share = 0.3\n");
            bump(file);
            awaitSettingsVersion(a.url(), 6);
            assertEquals(7, a.tune("compression-probe-share=0.4").get("settings_version").getAsLong());
            assertEquals(Map.of("tailguard.controller.tau", "0.9", "tailguard.learner.lr", "7.0E-5",
                    "tailguard.compression.probe-share", "0.4"), tuned(state, "tuned"));
            assertEquals(Map.of("tailguard.controller.tau", "0.86", "tailguard.learner.lr", "2.0E-4",
                    "tailguard.compression.probe-share", "0.3"), tuned(state, "tunedFrom"));
        }
        // the next controller on the same store (the singleton moved, or the run restarted) starts tuned
        long schedule;
        try (ControllerNode b = ControllerNode.start(tmp, file, init)) {
            JsonObject st = status(b.url());
            assertEquals(0.9, st.get("tau").getAsDouble(), st.toString());
            assertEquals(7e-5, st.get("lr").getAsDouble(), st.toString());
            assertEquals(2, st.get("staleness").getAsInt(), st.toString());
            assertEquals(0.4, st.getAsJsonObject("compressed_rollout").get("probe_share").getAsDouble(), st.toString());
            assertEquals(7, st.get("settings_version").getAsLong(), "the same settings, the same version");
            // status shows what is tuned away from the configuration
            JsonObject t = st.getAsJsonObject("tuned");
            assertEquals(Set.of("tailguard.controller.tau", "tailguard.learner.lr", "tailguard.compression.probe-share"), t.keySet());
            assertEquals("0.9", t.getAsJsonObject("tailguard.controller.tau").get("value").getAsString());
            assertEquals("0.86", t.getAsJsonObject("tailguard.controller.tau").get("configured").getAsString());
            schedule = st.get("schedule_version").getAsLong();
        }
        // the configuration changed tau since it was tuned: its value stands, as a new settings and
        // schedule version; the other tuned keys stay tuned
        Files.writeString(file, "tailguard.controller.tau = 0.8\n" + rest + "tailguard.compression.probe-share = 0.3\n");
        try (ControllerNode c = ControllerNode.start(tmp, file, init)) {
            JsonObject st = status(c.url());
            assertEquals(0.8, st.get("tau").getAsDouble(), st.toString());
            assertEquals(7e-5, st.get("lr").getAsDouble(), st.toString());
            assertEquals(0.4, st.getAsJsonObject("compressed_rollout").get("probe_share").getAsDouble(), st.toString());
            assertEquals(8, st.get("settings_version").getAsLong());
            assertEquals(schedule + 1, st.get("schedule_version").getAsLong());
            // state.json is written off the controller's thread: wait for the write of this start
            assertEquals(Map.of("tailguard.learner.lr", "7.0E-5", "tailguard.compression.probe-share", "0.4"),
                    awaitTuned(state, "tuned", Map.of("tailguard.learner.lr", "7.0E-5", "tailguard.compression.probe-share", "0.4")));
        }
    }

    /** The state file's {@code field} once it equals {@code want}, or as it is after 10 s. */
    static Map<String, String> awaitTuned(Path state, String field, Map<String, String> want) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        Map<String, String> got = tuned(state, field);
        while (!got.equals(want) && System.nanoTime() < deadline) {
            Thread.sleep(50);
            got = tuned(state, field);
        }
        return got;
    }

    /**
     * The state file cannot be written (a directory stands where it should be): a tune is applied and
     * runs, but is answered as not persisted, and `tune` exits 1 (an internal failure, not bad input).
     */
    @Test
    void aTuningWhoseStateCannotBeWrittenRunsButIsAnsweredAsNotPersisted(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path file = tmp.resolve("run.conf");
        Files.writeString(file, "tailguard.controller.tau = 0.86\ntailguard.controller.window = 1s\n");
        Path state = tmp.resolve("run/controller/state.json");
        Files.createDirectories(state);
        Files.writeString(state.resolve("in-the-way"), "x");
        try (ControllerNode a = ControllerNode.start(tmp, file, init)) {
            CliBadInputTest.Run r = CliBadInputTest.cli("tune", "--admin", a.url(), "--json", "tau=0.9");
            assertEquals(1, r.code(), r.out() + r.err());
            JsonObject j = JsonParser.parseString(r.out().strip()).getAsJsonObject();
            assertTrue(j.get("accepted").getAsBoolean(), j.toString());
            assertFalse(j.get("persisted").getAsBoolean(), j.toString());
            String msg = j.get("message").getAsString();
            assertTrue(msg.startsWith("applied tailguard.controller.tau") && msg.contains("NOT persisted")
                    && msg.contains(state.toString()), msg);
            assertEquals(0.9, status(a.url()).get("tau").getAsDouble(), "the change runs");
            assertEquals(1, status(a.url()).get("settings_version").getAsLong());

            CliBadInputTest.Run plain = CliBadInputTest.cli("tune", "--admin", a.url(), "tau=0.8");
            assertEquals(1, plain.code(), plain.out() + plain.err());
            assertTrue(plain.out().contains("NOT persisted"), plain.out());
        }
    }

    /**
     * A web page of another site posts a form to the controller's /tune (no token: it is on
     * localhost): refused, and the state file that a tune rewrites is byte for byte as before.
     */
    @Test
    void aFormPostedFromAnotherSiteChangesNothing(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path file = tmp.resolve("run.conf");
        Files.writeString(file, "tailguard.controller.tau = 0.86\ntailguard.controller.window = 1s\n");
        Path state = tmp.resolve("run/controller/state.json");
        try (ControllerNode a = ControllerNode.start(tmp, file, init)) {
            assertEquals(1, a.tune("tau=0.9").get("settings_version").getAsLong());
            byte[] before = Files.readAllBytes(state);
            int port = java.net.URI.create(a.url()).getPort();
            byte[] form = "tau=0.5&staleness=0".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            AdminServerTest.Answer crossSite = AdminServerTest.raw(port, "POST",
                    Map.of("Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example"), form);
            assertEquals(403, crossSite.code(), crossSite.body());
            AdminServerTest.Answer noOrigin = AdminServerTest.raw(port, "POST",
                    Map.of("Content-Type", "application/x-www-form-urlencoded"), form);
            assertEquals(415, noOrigin.code(), noOrigin.body());
            AdminServerTest.Answer json = AdminServerTest.raw(port, "POST", Map.of("Content-Type", "application/json",
                    "Origin", "http://evil.example"), "{\"tau\": \"0.5\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(403, json.code(), json.body());
            JsonObject after = status(a.url());
            assertEquals(0.9, after.get("tau").getAsDouble());
            assertEquals(1, after.get("settings_version").getAsLong());
            org.junit.jupiter.api.Assertions.assertArrayEquals(before, Files.readAllBytes(state));
        }
    }

    static Map<String, String> tuned(Path state, String field) throws Exception {
        Map<String, String> m = new java.util.TreeMap<>();
        JsonParser.parseString(Files.readString(state)).getAsJsonObject().getAsJsonObject(field).entrySet()
                .forEach(e -> m.put(e.getKey(), e.getValue().getAsString()));
        return m;
    }

    static void awaitSettingsVersion(String url, long version) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (status(url).get("settings_version").getAsLong() < version && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertEquals(version, status(url).get("settings_version").getAsLong());
    }

    @Test
    void aStateFileFromBeforeTheTuningWasKeptReadsAsNoTuning(@TempDir Path tmp) throws Exception {
        Config c = ConfigFactory.parseString("tailguard.train.out = \"" + tmp.resolve("run") + "\"")
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "test");
        Files.createDirectories(ControllerState.file(s).getParent());
        Files.writeString(ControllerState.file(s), "{\"nextGroup\":7,\"openGroups\":[5,6]}");
        ControllerState st = ControllerState.read(s);
        assertEquals(7, st.nextGroup());
        assertEquals(2, st.openGroups().length);
        assertEquals(0, st.settingsVersion());
        assertTrue(st.tuned().isEmpty() && st.tunedFrom().isEmpty());
    }

    static final String RUN_FILE = "tailguard.controller.window = 1s\ntailguard.learner.warmup-steps = 0\n";

    /**
     * A short in-process run (controller, buffer, learner, one worker; tiny model) with a watched
     * file and the admin endpoint; {@code extraFile} is appended to the watched file.
     */
    static final class LiveRun implements AutoCloseable {
        final Path file;
        final RunRecorder recorder = new RunRecorder(System.err, 1000);
        final TailguardNode node;
        final String url;

        LiveRun(Path tmp, String extraFile, String fixed) throws Exception {
            Path init = tmp.resolve("init");
            assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
            Path sched = tmp.resolve("fixed.conf");
            Files.writeString(sched, "tailguard.schedule { version = 1, kind = fixed, budget = 48 }\n");
            int port = io.tailguard.actors.integration.Ports.freePort();
            file = tmp.resolve("run.conf");
            Files.writeString(file, RUN_FILE + extraFile);
            Config c = ConfigFactory.parseFile(file.toFile())
                    .withFallback(ConfigFactory.parseString("tailguard.admin.port = " + port + "\ntailguard.metrics.port = 0\n"
                            + "tailguard.train.out = \"" + tmp.resolve("run") + "\"\ntailguard.train.steps = 1000\n"
                            + "tailguard.train.eval-n = 0\ntailguard.train.context-min = 64\ntailguard.train.context-max = 96\n"
                            + "tailguard.rollout.group-size = 2\ntailguard.rollout.prompts-per-lease = 1\n"
                            + "tailguard.learner.groups-per-step = 1\ntailguard.controller.schedule = \"" + sched + "\"\n" + fixed))
                    .withFallback(ConfigFactory.load()).resolve();
            RunSettings s = RunSettings.parse(c, file.toString());
            node = new TailguardNode(c, s, Set.of("controller", "learner", "rollout"), init, "cpu", true, recorder.behavior());
            node.watch(file);
            url = "http://127.0.0.1:" + port;
            awaitStatus(url);
        }

        /** The first step numbered above {@code after}, waiting for it. */
        RunObserver.Step stepAfter(int after) throws Exception {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (System.nanoTime() < deadline) {
                for (RunObserver.Step st : recorder.steps()) {
                    if (st.step() > after) {
                        return st;
                    }
                }
                Thread.sleep(100);
            }
            throw new AssertionError("no step after " + after + " within 60 s");
        }

        int lastStep() {
            var st = recorder.steps();
            return st.isEmpty() ? 0 : st.get(st.size() - 1).step();
        }

        /** The first step at or after `from` that used learning rate lr (within two steps of it, since the change is asynchronous). */
        RunObserver.Step firstStepWithLr(int from, double lr) throws Exception {
            for (int k = from; k < from + 3; k++) {
                RunObserver.Step st = stepAfter(k - 1);
                if (st.lr() == lr) {
                    return st;
                }
            }
            throw new AssertionError("no step from " + from + " used lr " + lr + ": " + recorder.steps());
        }

        @Override
        public void close() {
            node.close();
        }
    }

    @Test
    void learningRateAndStalenessBoundAreLiveThroughTuneAndTheFile(@TempDir Path tmp) throws Exception {
        try (LiveRun run = new LiveRun(tmp, "tailguard.learner.lr = 2e-4\ntailguard.buffer.staleness = 2\n", "")) {
            String url = run.url;
            RunObserver.Step first = run.stepAfter(0);
            assertEquals(2e-4, first.lr()); // no warm-up: the peak from the first step
            JsonObject st = status(url);
            long schedule = st.get("schedule_version").getAsLong();
            assertEquals(0, st.get("settings_version").getAsLong());
            assertEquals(2e-4, st.get("lr").getAsDouble());
            assertEquals(2, st.get("staleness").getAsInt());

            // all or nothing: a good controller key with a bad lr changes nothing
            CliBadInputTest.Run bad = CliBadInputTest.cli("tune", "--admin", url, "tau=0.9", "lr=-1");
            assertEquals(2, bad.code(), bad.err());
            assertTrue(bad.err().contains("tailguard.learner.lr: must be a positive number, got -1.0"), bad.err());
            st = status(url);
            assertEquals(0.86, st.get("tau").getAsDouble());
            assertEquals(2e-4, st.get("lr").getAsDouble());
            assertEquals(0, st.get("settings_version").getAsLong());
            assertEquals(schedule, st.get("schedule_version").getAsLong());

            CliBadInputTest.Run ok = CliBadInputTest.cli("tune", "--admin", url, "--json", "lr=5e-5", "staleness=1");
            assertEquals(0, ok.code(), ok.err());
            int at = run.lastStep();
            JsonObject j = JsonParser.parseString(ok.out().strip()).getAsJsonObject();
            assertTrue(j.get("accepted").getAsBoolean(), j.toString());
            assertEquals(1, j.get("settings_version").getAsLong());
            assertEquals(schedule, j.get("schedule_version").getAsLong(), "lr and staleness are not a schedule change");
            assertTrue(j.get("message").getAsString().contains("tailguard.learner.lr 2.0E-4 -> 5.0E-5"), j.toString());
            assertTrue(j.get("message").getAsString().contains("tailguard.buffer.staleness 2 -> 1"), j.toString());
            st = status(url);
            assertEquals(5e-5, st.get("lr").getAsDouble());
            assertEquals(1, st.get("staleness").getAsInt());
            // the learner's next steps use it (the change reaches it while a step may be running)
            RunObserver.Step tuned = run.firstStepWithLr(at + 1, 5e-5);
            assertEquals(5e-5, run.stepAfter(tuned.step()).lr());
            for (RunObserver.Step x : run.recorder.steps()) {
                if (x.step() > tuned.step()) {
                    assertTrue(x.staleness() <= 1, "step " + x.step() + " trained a group " + x.staleness() + " versions old");
                }
            }
            assertEquals(1.0, run.node.metrics().stalenessBound.get());
            assertEquals(5e-5, run.node.metrics().learnerLrPeak.get());
            assertEquals(1.0, run.node.metrics().settingsVersion.get());

            // the same through the watched file: a bad lr is refused and the running one stays; a good one applies
            Files.writeString(run.file, RUN_FILE + "tailguard.learner.lr = -1\ntailguard.buffer.staleness = 1\n");
            bump(run.file);
            Thread.sleep(2500);
            assertEquals(5e-5, status(url).get("lr").getAsDouble());
            assertEquals(1, status(url).get("settings_version").getAsLong());
            Files.writeString(run.file, RUN_FILE + "tailguard.learner.lr = 1e-4\ntailguard.buffer.staleness = 1\n");
            bump(run.file);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (status(url).get("lr").getAsDouble() != 1e-4 && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            at = run.lastStep();
            st = status(url);
            assertEquals(1e-4, st.get("lr").getAsDouble());
            assertEquals(2, st.get("settings_version").getAsLong());
            assertEquals(1, st.get("staleness").getAsInt());
            run.firstStepWithLr(at + 1, 1e-4);
        }
    }

    /** The newest store version directory, or null. */
    static Path newestVersion(Path store) throws Exception {
        if (!Files.isDirectory(store)) {
            return null;
        }
        try (var dirs = Files.list(store)) {
            return dirs.filter(d -> d.getFileName().toString().matches("v\\d{6,}") && Files.isRegularFile(d.resolve("manifest.json")))
                    .max(java.util.Comparator.naturalOrder()).orElse(null);
        }
    }

    /** Waits until the newest store version does (or does not) carry a LoRA, and returns it. */
    static Path awaitVersion(Path store, boolean withLora) throws Exception {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            Path v = newestVersion(store);
            if (v != null && Files.isRegularFile(v.resolve("lora/adapter_model.safetensors")) == withLora) {
                return v;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("no store version " + (withLora ? "with" : "without") + " a LoRA within 60 s");
    }

    /** Waits until every worker's sparse actor samples with (1) or without (0) a LoRA. */
    static void awaitWorkerLora(NodeMetrics m, double expected) throws Exception {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            var points = m.workerLora.collect().getDataPoints();
            if (!points.isEmpty() && points.stream().allMatch(p -> p.getValue() == expected)) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("workers did not report tailguard_worker_lora " + expected + " within 60 s");
    }

    @Test
    void distillSparseSwitchesOnAndOffLive(@TempDir Path tmp) throws Exception {
        try (LiveRun run = new LiveRun(tmp, "tailguard.learner.distill = off\n", "")) {
            run.stepAfter(0);
            assertEquals("off", status(run.url).get("distill").getAsString());
            Path store = tmp.resolve("run/store");
            // a step is observed before its policy is published (and after a checkpoint write): wait for the version
            awaitVersion(store, false);

            CliBadInputTest.Run bad = CliBadInputTest.cli("tune", "--admin", run.url, "distill=maybe");
            assertEquals(2, bad.code(), bad.err());
            assertTrue(bad.err().contains("tailguard.learner.distill: must be on or off, got \"maybe\""), bad.err());

            CliBadInputTest.Run on = CliBadInputTest.cli("tune", "--admin", run.url, "distill=on");
            assertEquals(0, on.code(), on.err());
            assertEquals("on", status(run.url).get("distill").getAsString());
            Path v = awaitVersion(store, true);
            assertTrue(Files.isRegularFile(v.resolve("lora/adapter_config.json")), v.toString());
            String manifest = Files.readString(v.resolve("manifest.json"));
            assertTrue(manifest.contains("\"lora/adapter_model.safetensors\"") && manifest.contains("\"lora/adapter_config.json\""), manifest);
            JsonObject adapter = JsonParser.parseString(Files.readString(v.resolve("lora/adapter_config.json"))).getAsJsonObject();
            assertEquals(8, adapter.get("r").getAsInt());
            awaitWorkerLora(run.node.metrics(), 1);
            assertTrue(run.node.metrics().distillSteps.get() >= 1, "the LoRA was trained");
            assertEquals(1.0, run.node.metrics().learnerDistill.get());

            CliBadInputTest.Run off = CliBadInputTest.cli("tune", "--admin", run.url, "tailguard.learner.distill=off");
            assertEquals(0, off.code(), off.err());
            awaitVersion(store, false);
            awaitWorkerLora(run.node.metrics(), 0);
            assertEquals(0.0, run.node.metrics().learnerDistill.get());
        }
    }

    /** File systems with coarse timestamps: make sure the edit is seen as a change. */
    static void bump(Path f) throws Exception {
        Files.setLastModifiedTime(f, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + (long) (Math.random() * 1000)));
    }

    static JsonObject awaitStatus(String url) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            CliBadInputTest.Run r = CliBadInputTest.cli("status", "--admin", url, "--json");
            if (r.code() == 0) {
                return JsonParser.parseString(r.out().strip()).getAsJsonObject();
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no status: " + r.err());
            }
            Thread.sleep(300);
        }
    }
}
