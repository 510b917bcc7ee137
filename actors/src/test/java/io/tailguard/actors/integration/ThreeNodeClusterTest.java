package io.tailguard.actors.integration;

import io.tailguard.actors.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Three JVMs on loopback (controller + learner; two rollout nodes) train a few steps across process
 * boundaries, every message through Kryo over Artery: trajectories from both rollout nodes reach
 * the learner, and both rollout nodes hot-swap to every published version. Then one rollout JVM is
 * killed with SIGKILL mid-run: its lease is re-issued after the lease timeout and training goes on
 * with the other node, no group is trained twice and none is lost ({@link Lossless}).
 */
class ThreeNodeClusterTest {
    /** Enough steps that training is still going when the killed node's lease comes back (3 s after the kill), on a loaded machine too. */
    static final int STEPS = 80;

    record Node(Process process, Path log, int metricsPort, int artery) {
        String metrics() throws Exception {
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.body();
        }

        String logText() throws IOException {
            return Files.readString(log);
        }
    }

    static Node start(Path tmp, String name, Path conf, String roles, int seedPort, int artery, String... extra) throws Exception {
        int metrics = Ports.freePort();
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xss4m", "-Xmx1g", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "node", "--config", conf.toString(), "--roles", roles,
                "--set", "pekko.remote.artery.canonical.port=" + artery,
                "--set", "pekko.cluster.seed-nodes=[\"pekko://tailguard@127.0.0.1:" + seedPort + "\"]",
                "--set", "tailguard.metrics.port=" + metrics));
        cmd.addAll(List.of(extra));
        Path log = tmp.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        return new Node(pb.start(), log, metrics, artery);
    }

    /**
     * A tiny initialised checkpoint and the run configuration every member of a cluster test reads:
     * kv-recall at 64–96 tokens, one group per lease, a checkpoint every 2 steps, admin off, and
     * failure detection patient enough for four JVMs on two cores.
     */
    static Path clusterConf(Path tmp, int steps, String leaseTimeout, String... extra) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        List<String> lines = new ArrayList<>(List.of(
                "tailguard.train { checkpoint = \"" + init + "\", task = kv-recall, context-min = 64, context-max = 96,",
                "  steps = " + steps + ", eval-n = 0, out = \"" + tmp.resolve("run") + "\" }",
                "tailguard.rollout { workers = 1, prompts-per-lease = 1, group-size = 4, lease-timeout = " + leaseTimeout + " }",
                "tailguard.learner { groups-per-step = 2, publish-every = 1, checkpoint-every = 2 }",
                "tailguard.controller.window = 1s",
                "tailguard.admin.port = 0",
                // four JVMs on two cores: a member starved of CPU for a few seconds is not dead
                "pekko.cluster.failure-detector.acceptable-heartbeat-pause = 10s",
                // a member that is killed while another joins is one change, not instability
                "pekko.cluster.split-brain-resolver.down-all-when-unstable = off"));
        lines.addAll(List.of(extra));
        Path conf = tmp.resolve("cluster.conf");
        Files.writeString(conf, String.join("\n", lines) + "\n");
        return conf;
    }

    static double sum(String metrics, String name, String labelFilter) {
        double s = 0;
        for (String line : metrics.split("\n")) {
            if (line.startsWith(name) && (labelFilter == null || line.contains(labelFilter))) {
                s += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return s;
    }

    @Test
    void threeJvmsTrainAcrossProcessesAndSurviveAKilledRolloutNode(@TempDir Path tmp) throws Exception {
        Path conf = clusterConf(tmp, STEPS, "3s");
        int seed = Ports.freePort();
        List<Node> nodes = new ArrayList<>();
        try {
            Node a = start(tmp, "controller-learner", conf, "controller,learner", seed, seed);
            nodes.add(a);
            Node b = start(tmp, "rollout-b", conf, "rollout", seed, Ports.freePort());
            nodes.add(b);
            Node c = start(tmp, "rollout-c", conf, "rollout", seed, Ports.freePort());
            nodes.add(c);

            // Once both rollout nodes have contributed, kill -9 one of them (it holds a lease: workers
            // ask for the next one as soon as they deliver).
            String both = waitUntil(a, 300, m -> sum(m, "tailguard_trained_groups_total", "127.0.0.1:" + b.artery()) > 0
                    && sum(m, "tailguard_trained_groups_total", "127.0.0.1:" + c.artery()) > 0
                    && sum(m, "tailguard_learner_steps_total", null) >= 2);
            assertTrue(sum(both, "tailguard_learner_steps_total", null) < STEPS, "nothing left to survive:\n" + both);
            // both rollout nodes hot-swapped to every version published so far
            for (Node n : List.of(b, c)) {
                String log = waitForLog(n, "now rolls out with policy v2", 120);
                for (int v = 0; v <= 2; v++) {
                    assertTrue(log.contains("now rolls out with policy v" + v + System.lineSeparator()), n.log() + " never loaded v" + v + ":\n" + log);
                }
            }
            c.process().destroyForcibly().waitFor();
            // its lease comes back after the timeout while training goes on with node b
            String reissued = waitUntil(a, 120, m -> sum(m, "tailguard_leases_total", "reissued") >= 1);
            assertTrue(sum(reissued, "tailguard_learner_steps_total", null) < STEPS, "training ended before the re-issue:\n" + reissued);
            waitUntil(a, 300, m -> sum(m, "tailguard_learner_steps_total", null) >= STEPS);

            String m = a.metrics();
            // no group trained twice: every trained group is a distinct group id (the buffer's dedup),
            // and late duplicates of re-issued leases, if any, were dropped and counted
            assertEquals(STEPS * 2, sum(m, "tailguard_trained_groups_total", null), m);
            Lossless.assertLossless(tmp.resolve("run"), STEPS * 2, 120);
            String log = waitForLog(b, "now rolls out with policy v" + STEPS, 60);
            for (int v = 0; v <= STEPS; v++) {
                assertTrue(log.contains("now rolls out with policy v" + v + System.lineSeparator()), "node b never loaded v" + v + ":\n" + log);
            }
        } finally {
            stopAll(nodes);
        }
    }

    /** Kills every node and keeps their logs under target/cluster-test-logs for a look after a failure. */
    static void stopAll(List<Node> nodes) throws Exception {
        for (Node n : nodes) {
            n.process().destroyForcibly();
        }
        Path keep = Path.of("target", "cluster-test-logs");
        Files.createDirectories(keep);
        for (Node n : nodes) {
            n.process().waitFor();
            Files.copy(n.log(), keep.resolve(n.log().getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }

    static String waitUntil(Node n, int seconds, java.util.function.Predicate<String> done) throws Exception {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        String last = "";
        while (System.nanoTime() < deadline) {
            if (!n.process().isAlive()) {
                throw new AssertionError("node died:\n" + n.logText());
            }
            try {
                last = n.metrics();
                if (done.test(last)) {
                    return last;
                }
            } catch (IOException e) {
                // not listening yet
            }
            Thread.sleep(500);
        }
        throw new AssertionError("not reached after " + seconds + " s; log:\n" + n.logText() + "\nmetrics:\n"
                + last.lines().filter(l -> l.startsWith("tailguard_")).collect(java.util.stream.Collectors.joining("\n")));
    }

    static String waitForLog(Node n, String text, int seconds) throws Exception {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        while (System.nanoTime() < deadline) {
            String log = n.logText();
            if (log.contains(text)) {
                return log;
            }
            Thread.sleep(500);
        }
        return n.logText();
    }

}
