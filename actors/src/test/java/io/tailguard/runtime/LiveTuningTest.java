package io.tailguard.runtime;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.cli.CliBadInputTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `tune` and config-file edits against a running controller node. */
class LiveTuningTest {
    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static JsonObject status(String url) {
        CliBadInputTest.Run r = CliBadInputTest.cli("status", "--admin", url, "--json");
        assertEquals(0, r.code(), r.err());
        return JsonParser.parseString(r.out().strip()).getAsJsonObject();
    }

    @Test
    void tuneAndFileEditsAreValidatedVersionedAndApplied(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        int port = freePort();
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
            assertEquals(v0 + 1, j.get("schedule_version").getAsLong());
            assertEquals(0.9, status(url).get("tau").getAsDouble());

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
