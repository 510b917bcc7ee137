package io.tailguard.actors.integration;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.Main;
import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.actors.runtime.TailguardNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;


import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real Prometheus server (Debian's `prometheus`) scrapes a running node's /metrics, and the key
 * series are there when queried back through its HTTP API. Skipped when the binary is missing,
 * unless TAILGUARD_REQUIRE_PROMETHEUS=1 (CI installs it and sets that).
 */
class PrometheusScrapeTest {
    static final List<String> KEY_SERIES = List.of("tailguard_tau", "tailguard_schedule_version", "tailguard_kv_budget_tokens",
            "tailguard_alpha_p5", "tailguard_policy_version", "tailguard_rollout_tokens_total", "tailguard_learner_steps_total",
            "tailguard_trained_groups_total", "tailguard_leases_total", "tailguard_buffer_groups", "tailguard_reward_mean",
            "tailguard_wire_frames_dropped_total", "tailguard_trajectories_completed_total", "tailguard_trajectories_trained_total",
            "tailguard_trajectories_dropped_stale_total", "tailguard_trajectories_buffered", "jvm_memory_used_bytes");

    static Path prometheusBinary() {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
            Path p = Path.of(dir, "prometheus");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    @Test
    void aRealPrometheusScrapesTheKeySeries(@TempDir Path tmp) throws Exception {
        Path bin = prometheusBinary();
        if (bin == null) {
            assertTrue(!"1".equals(System.getenv("TAILGUARD_REQUIRE_PROMETHEUS")), "prometheus is required but not on PATH");
            Assumptions.abort("prometheus not installed (apt-get install prometheus)");
        }
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        int metricsPort = Ports.freePort();
        Config c = ConfigFactory.parseString(String.join("\n",
                        "tailguard.train { checkpoint = \"" + init + "\", context-min = 64, context-max = 96, steps = 1000, eval-n = 0,",
                        "  out = \"" + tmp.resolve("run") + "\" }",
                        "tailguard.rollout { group-size = 4, prompts-per-lease = 1 }",
                        "tailguard.learner.groups-per-step = 1",
                        "tailguard.metrics.port = " + metricsPort, "tailguard.admin.port = 0", "tailguard.controller.window = 1s"))
                .withFallback(ConfigFactory.load()).resolve();
        RunSettings s = RunSettings.parse(c, "test");
        int webPort = Ports.freePort();
        Path promConf = tmp.resolve("prometheus.yml");
        Files.writeString(promConf, String.join("\n", "global:", "  scrape_interval: 1s", "scrape_configs:",
                "  - job_name: tailguard", "    static_configs:", "      - targets: ['127.0.0.1:" + metricsPort + "']", ""));
        Process prom = null;
        try (TailguardNode node = new TailguardNode(c, s, TailguardNode.ROLES, init, "cpu", true, null)) {
            prom = new ProcessBuilder(bin.toString(), "--config.file=" + promConf, "--storage.tsdb.path=" + tmp.resolve("tsdb"),
                    "--web.listen-address=127.0.0.1:" + webPort).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("prometheus.log").toFile()).start();
            HttpClient http = HttpClient.newHttpClient();
            long deadline = System.nanoTime() + 120_000_000_000L;
            java.util.Set<String> missing = new java.util.TreeSet<>(KEY_SERIES);
            while (!missing.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(1000);
                for (String name : List.copyOf(missing)) {
                    try {
                        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + webPort
                                + "/api/v1/query?query=" + URLEncoder.encode(name, StandardCharsets.UTF_8)))
                                .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                        JsonObject j = JsonParser.parseString(r.body()).getAsJsonObject();
                        if ("success".equals(j.get("status").getAsString())
                                && j.getAsJsonObject("data").getAsJsonArray("result").size() > 0) {
                            missing.remove(name);
                        }
                    } catch (java.io.IOException e) {
                        // not up yet
                    }
                }
            }
            assertTrue(missing.isEmpty(), "series Prometheus never scraped: " + missing + "\n" + Files.readString(tmp.resolve("prometheus.log")));
        } finally {
            if (prom != null) {
                prom.destroy();
                prom.waitFor();
            }
        }
    }

}
