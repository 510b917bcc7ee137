package io.tailguard.actors.integration;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.Main;
import io.tailguard.actors.runtime.DeploymentFilesTest;
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
import java.util.stream.Stream;

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
                    "--set", "tailguard.train.task-steps=0",   // copy's default span for these short prompts
                    "--set", "tailguard.train.steps=1000", "--set", "tailguard.train.eval-n=0",
                    "--set", "tailguard.rollout.group-size=4", "--set", "tailguard.rollout.prompts-per-lease=1",
                    "--set", "tailguard.learner.groups-per-step=1",
                    // small windows so the controller decides (and exports schedule changes) early; a floor
                    // below these short contexts (the quickstart's 256 is above every one: nothing to change)
                    "--set", "tailguard.controller.window=1s", "--set", "tailguard.controller.min-tokens=16",
                    "--set", "tailguard.controller.min-budget=48");
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
            int web = Ports.freePort();
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

    /**
     * A node launcher standing in for java (the script's JAVA): it logs each launch's arguments, and
     * the first launch of node 1 (roles controller) fails the way a JVM fails when another process took its port between
     * the script's check and the bind (FAIL=bind), or fails otherwise (FAIL=other). Every other launch
     * prints the node's address line and serves /metrics with N members Up until SIGTERM.
     */
    private static final String FAKE_NODE = """
            #!/usr/bin/env bash
            echo "$*" >>"$FAKE_DIR/launches"
            if [[ "$*" == *"--roles controller"* && ! -e "$FAKE_DIR/failed" ]]; then
              touch "$FAKE_DIR/failed"
              if [ "$FAIL" = bind ]; then
                echo "java.net.BindException: [/127.0.0.1:1] Address already in use" >&2
              else
                echo "tailguard: internal error: something else" >&2
              fi
              exit 1
            fi
            metrics=$(echo "$*" | sed -nE 's/.*tailguard[.]metrics[.]port=([0-9]+).*/\\1/p')
            artery=$(echo "$*" | sed -nE 's/.*canonical[.]port=([0-9]+).*/\\1/p')
            echo "node pekko://tailguard@127.0.0.1:$artery roles fake" >&2
            exec "$PY" -c '
            import http.server, sys
            body = ("tailguard_cluster_members{status=\\"up\\"} %s\\n" % sys.argv[3]).encode()
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *a):
                    pass
            http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
            ' io.tailguard.actors.cli.Main "$metrics" "$N"
            """;

    @Test
    void aStartThatLosesAPortMeanwhileIsRetriedOnNewPortsAndAnyOtherEarlyExitFails(@TempDir Path tmp) throws Exception {
        Path py = Stream.of("/usr/bin/python3", "/usr/local/bin/python3").map(Path::of).filter(Files::isExecutable).findFirst().orElse(null);
        Assumptions.assumeTrue(py != null, "no python3 for the fake node");
        Path root = DeploymentFilesTest.repoRoot();
        Path fake = tmp.resolve("fake-java");
        Files.writeString(fake, FAKE_NODE);
        assertTrue(fake.toFile().setExecutable(true));
        Path dir = tmp.resolve("cluster");
        Files.createDirectories(dir.resolve("fake"));
        Map<String, String> env = Map.of("JAVA", fake.toString(), "FAKE_DIR", dir.resolve("fake").toString(),
                "FAIL", "bind", "N", "3", "PY", py.toString());
        try {
            ScriptRun start = script(root, tmp, env, "start", "3", "--dir", dir.toString());
            assertEquals(0, start.rc(), "start failed:\n" + start.out() + start.err());
            assertTrue(start.err().contains("node 1: a port was taken meanwhile; starting all nodes again on new ports"), start.err());
            assertEquals(3, start.out().lines().count(), start.out());
            // launches by the seed they were given: the failed attempt's, then the retry's (node 1's new Artery port)
            Pattern seed = Pattern.compile("seed-nodes=\\[\"pekko://tailguard@127\\.0\\.0\\.1:(\\d+)\"]");
            Map<String, List<String>> bySeed = new java.util.LinkedHashMap<>();
            for (String l : Files.readAllLines(dir.resolve("fake/launches"))) {
                Matcher m = seed.matcher(l);
                assertTrue(m.find(), l);
                bySeed.computeIfAbsent(m.group(1), k -> new ArrayList<>()).add(l);
            }
            String retrySeed = portsFile(dir.resolve("node-1.ports")).get("ARTERY");
            assertEquals(2, bySeed.size(), "two attempts: " + bySeed.keySet());
            List<String> retry = bySeed.get(retrySeed);
            assertEquals(3, retry.size(), "the retry starts all three nodes, seeded by node 1's new port");
            Set<String> first = new TreeSet<>();
            bySeed.forEach((k, ls) -> {
                if (!k.equals(retrySeed)) {
                    ls.forEach(l -> first.addAll(ports(l)));
                }
            });
            // the retry hands out ports not tried before, and every node of it has its own
            Set<String> all = new TreeSet<>();
            for (String l : retry) {
                Set<String> p = ports(l);
                assertTrue(p.stream().noneMatch(first::contains), "a port of the failed attempt reused: " + l);
                p.forEach(x -> assertTrue(all.add(x), "port " + x + " given twice"));
            }
            assertTrue(Files.readString(dir.resolve("node-1.attempt-1.log")).contains("Address already in use"));
        } finally {
            assertEquals(0, script(root, tmp, env, "stop", "--dir", dir.toString()).rc());
        }

        // any other exit during start is reported with the node's log, and not retried
        Path dir2 = tmp.resolve("cluster2");
        Files.createDirectories(dir2.resolve("fake"));
        Map<String, String> env2 = Map.of("JAVA", fake.toString(), "FAKE_DIR", dir2.resolve("fake").toString(),
                "FAIL", "other", "N", "3", "PY", py.toString());
        ScriptRun bad = script(root, tmp, env2, "start", "3", "--dir", dir2.toString());
        assertEquals(1, bad.rc(), bad.err());
        assertTrue(bad.err().contains("node 1 exited during start; its log:") && bad.err().contains("something else"), bad.err());
        assertEquals(1, Files.readAllLines(dir2.resolve("fake/launches")).stream().filter(l -> l.contains("--roles controller")).count(),
                "node 1 is not started again");
        assertEquals("", bad.out());
    }

    /** The Artery, metrics, management and admin ports on one launch's command line. */
    private static Set<String> ports(String launch) {
        Set<String> p = new TreeSet<>();
        Matcher m = Pattern.compile("(?:canonical\\.port|metrics\\.port|admin\\.port|http\\.port)=(\\d+)").matcher(launch);
        while (m.find()) {
            if (!m.group(1).equals("0")) {
                p.add(m.group(1));
            }
        }
        assertEquals(launch.contains("--roles controller") ? 4 : 3, p.size(), launch);
        return p;
    }

    private static Map<String, String> portsFile(Path f) throws IOException {
        Map<String, String> m = new java.util.HashMap<>();
        for (String l : Files.readAllLines(f)) {
            String[] kv = l.split("=", 2);
            m.put(kv[0], kv[1]);
        }
        return m;
    }

    record ScriptRun(int rc, String out, String err) {}

    /** Runs deploy/local-cluster.sh with this JVM's classpath as the nodes' (no build, no bin/tailguard). */
    static ScriptRun script(Path root, Path tmp, String... args) throws Exception {
        return script(root, tmp, Map.of(), args);
    }

    /** The same with more (or other) environment variables. */
    static ScriptRun script(Path root, Path tmp, Map<String, String> env, String... args) throws Exception {
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
        pb.environment().putAll(env);
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
