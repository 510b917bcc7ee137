package io.tailguard.integration;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.cli.Main;
import io.tailguard.runtime.DeploymentFilesTest;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `deploy/local-cluster.sh start 3` (three JVMs on loopback with config/cluster.conf: controller +
 * learner, two rollout nodes) and a real Prometheus server (Debian's package) running
 * deploy/prometheus/prometheus.yml: Prometheus scrapes all three nodes, and every metric name the
 * Grafana dashboard queries is a metric family the live nodes expose (their `# TYPE` lines) and
 * that Prometheus ingested. Then `stop` ends every node with SIGTERM and removes the pid files.
 * Skipped without the prometheus binary unless TAILGUARD_REQUIRE_PROMETHEUS=1 (CI).
 */
class LocalClusterTest {
    private static final Pattern NODE_LINE = Pattern.compile("node (\\d+) metrics (http://127\\.0\\.0\\.1:(\\d+)/metrics)");
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @Test
    void threeNodesScrapedByARealPrometheusExposeEveryDashboardMetric(@TempDir Path tmp) throws Exception {
        Path prometheus = PrometheusScrapeTest.prometheusBinary();
        if (prometheus == null) {
            assertTrue(!"1".equals(System.getenv("TAILGUARD_REQUIRE_PROMETHEUS")), "prometheus is required but not on PATH");
            Assumptions.abort("prometheus not installed (apt-get install prometheus)");
        }
        Path root = DeploymentFilesTest.repoRoot();
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        Path dir = tmp.resolve("cluster");
        Process prom = null;
        List<Long> pids = new ArrayList<>();
        try {
            ScriptRun start = script(root, tmp, "start", "3", "--dir", dir.toString(),
                    "--set", "tailguard.train.checkpoint=" + init,
                    "--set", "tailguard.train.context-min=64", "--set", "tailguard.train.context-max=96",
                    "--set", "tailguard.train.steps=1000", "--set", "tailguard.train.eval-n=0",
                    "--set", "tailguard.rollout.group-size=4", "--set", "tailguard.rollout.prompts-per-lease=1",
                    "--set", "tailguard.learner.groups-per-step=1",
                    // small windows so the controller decides (and exports schedule changes) early
                    "--set", "tailguard.controller.window=1s", "--set", "tailguard.controller.min-tokens=16");
            assertEquals(0, start.rc(), "start failed:\n" + start.out() + start.err());
            List<String> urls = new ArrayList<>();
            Matcher m = NODE_LINE.matcher("");
            List<String> lines = start.out().lines().toList();
            assertEquals(3, lines.size(), "one line per node on stdout:\n" + start.out());
            for (int i = 0; i < 3; i++) {
                assertTrue(m.reset(lines.get(i)).matches(), "not a node line: " + lines.get(i));
                assertEquals(String.valueOf(i + 1), m.group(1));
                urls.add(m.group(2));
                pids.add(Long.parseLong(Files.readString(dir.resolve("node-" + (i + 1) + ".pid")).strip()));
            }

            // the shipped Prometheus configuration, pointed at this cluster's target file
            Map<String, Object> conf = DeploymentFilesTest.loadAll(root.resolve("deploy/prometheus/prometheus.yml")).get(0);
            @SuppressWarnings("unchecked")
            Map<String, Object> job = ((List<Map<String, Object>>) conf.get("scrape_configs")).get(0);
            @SuppressWarnings("unchecked")
            Map<String, Object> sd = ((List<Map<String, Object>>) job.get("file_sd_configs")).get(0);
            sd.put("files", List.of(dir.resolve("prometheus-targets.json").toString()));
            Path promConf = tmp.resolve("prometheus.yml");
            DumperOptions o = new DumperOptions();
            o.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
            Files.writeString(promConf, new Yaml(o).dump(conf));
            int web = ThreeNodeClusterTest.freePort();
            prom = new ProcessBuilder(prometheus.toString(), "--config.file=" + promConf, "--storage.tsdb.path=" + tmp.resolve("tsdb"),
                    "--web.listen-address=127.0.0.1:" + web).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("prometheus.log").toFile()).start();

            Set<String> wanted = DeploymentFilesTest.dashboardMetricNames(root.resolve("deploy/grafana/tailguard.json"));
            Set<String> exposed = new TreeSet<>();
            Set<String> ingested = new TreeSet<>();
            Set<String> upTargets = new TreeSet<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (System.nanoTime() < deadline) {
                exposed.clear();
                for (String url : urls) {
                    exposed.addAll(typeNames(get(url)));
                }
                upTargets = upTargets(web);
                ingested = ingestedNames(web);
                if (exposed.containsAll(wanted) && ingested.containsAll(wanted) && upTargets.size() == 3) {
                    break;
                }
                Thread.sleep(2000);
            }
            assertEquals(new TreeSet<>(urls), upTargets, "Prometheus scrapes all three nodes\n" + Files.readString(tmp.resolve("prometheus.log")));
            Set<String> notExposed = new TreeSet<>(wanted);
            notExposed.removeAll(exposed);
            assertTrue(notExposed.isEmpty(), "the dashboard queries metrics no node exposes: " + notExposed);
            Set<String> notIngested = new TreeSet<>(wanted);
            notIngested.removeAll(ingested);
            assertTrue(notIngested.isEmpty(), "Prometheus never ingested: " + notIngested);
            // the key series too, and the members as every node sees them
            assertTrue(ingested.containsAll(PrometheusScrapeTest.KEY_SERIES), "key series missing: " + PrometheusScrapeTest.KEY_SERIES);
            for (String url : urls) {
                assertEquals(3.0, ThreeNodeClusterTest.sum(get(url), "tailguard_cluster_members{status=\"up\"}", null), url);
            }
        } finally {
            if (prom != null) {
                prom.destroy();
                prom.waitFor();
            }
            ScriptRun stop = script(root, tmp, "stop", "--dir", dir.toString());
            keepLogs(dir);
            assertEquals(0, stop.rc(), "stop failed:\n" + stop.out() + stop.err());
        }
        // stop ended every node and removed the pid files
        for (long pid : pids) {
            assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "node pid " + pid + " still alive");
        }
        try (var s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".pid")), "pid files left in " + dir);
        }
        assertEquals("[]", Files.readString(dir.resolve("prometheus-targets.json")).strip());
    }

    record ScriptRun(int rc, String out, String err) {}

    /** Runs deploy/local-cluster.sh with this JVM's classpath as the nodes' (no build, no bin/tailguard). */
    static ScriptRun script(Path root, Path tmp, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash", root.resolve("deploy/local-cluster.sh").toString()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(tmp, "script", ".out");
        Path err = Files.createTempFile(tmp, "script", ".err");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("TAILGUARD_CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().put("JAVA", Path.of(System.getProperty("java.home"), "bin", "java").toString());
        pb.environment().put("TAILGUARD_JAVA_OPTS", "-Xss4m -Xmx768m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC");
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().put("TAILGUARD_START_TIMEOUT", "300");
        pb.environment().put("TAILGUARD_STOP_TIMEOUT", "60");
        Process p = pb.start();
        if (!p.waitFor(400, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
        }
        return new ScriptRun(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    static String get(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }

    /** Metric family names of a Prometheus text exposition: its `# TYPE name type` lines. */
    static Set<String> typeNames(String exposition) {
        Set<String> names = new TreeSet<>();
        for (String line : exposition.split("\n")) {
            if (line.startsWith("# TYPE ")) {
                names.add(line.split(" ")[2]);
            }
        }
        return names;
    }

    /** The scrape URLs of the targets Prometheus has scraped successfully. */
    static Set<String> upTargets(int web) {
        Set<String> up = new TreeSet<>();
        try {
            JsonObject j = JsonParser.parseString(get("http://127.0.0.1:" + web + "/api/v1/targets")).getAsJsonObject();
            for (JsonElement t : j.getAsJsonObject("data").getAsJsonArray("activeTargets")) {
                JsonObject o = t.getAsJsonObject();
                if ("up".equals(o.get("health").getAsString())) {
                    up.add(o.get("scrapeUrl").getAsString());
                }
            }
        } catch (RuntimeException e) {
            // Prometheus not up yet
        }
        return up;
    }

    /** Every metric name Prometheus holds. */
    static Set<String> ingestedNames(int web) {
        Set<String> names = new TreeSet<>();
        try {
            JsonObject j = JsonParser.parseString(get("http://127.0.0.1:" + web + "/api/v1/label/__name__/values?match[]="
                    + URLEncoder.encode("{job=\"tailguard\"}", StandardCharsets.UTF_8))).getAsJsonObject();
            JsonArray a = j.getAsJsonArray("data");
            a.forEach(e -> names.add(e.getAsString()));
        } catch (RuntimeException e) {
            // Prometheus not up yet
        }
        return names;
    }

    static void keepLogs(Path dir) throws IOException {
        Path keep = Path.of("target", "local-cluster-test-logs");
        Files.createDirectories(keep);
        try (var s = Files.list(dir)) {
            for (Path p : s.filter(p -> p.toString().endsWith(".log")).toList()) {
                Files.copy(p, keep.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
