package io.tailguard.actors.integration;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.Main;
import io.tailguard.actors.runtime.DeploymentFilesTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cluster Bootstrap through the Kubernetes API, for real: two `node` JVMs run the ConfigMap's own
 * configuration (deploy/k8s/base/configmap.yaml: tailguard.cluster.bootstrap = kubernetes-api, no
 * seed nodes) against a fake API server on loopback (HTTPS with its own CA, a bearer token and a
 * namespace file where the service-account mount would put them, KUBERNETES_SERVICE_HOST/PORT).
 * The fake lists pods made from the StatefulSets' pod templates (their labels and container port
 * names), each with this test's ports and podIP 127.0.0.1. While it lists one running pod (and a
 * pending one) the members stay apart (required-contact-point-nr = 2); once it lists the second,
 * they form one cluster, formed by the pod with the lowest address (lowest management port here).
 */
class KubernetesBootstrapTest {
    private static final String NS = "tailguard";
    private static final String TOKEN = "test-service-account-token";

    record Pod(String name, Map<String, Object> labels, String container, List<String> portNames) {}

    @SuppressWarnings("unchecked")
    static Pod podOf(Map<String, Object> statefulSet, int ordinal) {
        Map<String, Object> template = (Map<String, Object>) ((Map<String, Object>) statefulSet.get("spec")).get("template");
        Map<String, Object> labels = (Map<String, Object>) ((Map<String, Object>) template.get("metadata")).get("labels");
        Map<String, Object> c = ((List<Map<String, Object>>) ((Map<String, Object>) template.get("spec")).get("containers")).get(0);
        List<String> ports = ((List<Map<String, Object>>) c.get("ports")).stream().map(p -> String.valueOf(p.get("name"))).toList();
        String name = ((Map<String, Object>) statefulSet.get("metadata")).get("name") + "-" + ordinal;
        return new Pod(name, labels, String.valueOf(c.get("name")), ports);
    }

    record Member(ThreeNodeClusterTest.Node node, int management) {}

    @Test
    void twoNodesFormOneClusterThroughKubernetesApiDiscovery(@TempDir Path tmp) throws Exception {
        Path root = DeploymentFilesTest.repoRoot();
        Path base = root.resolve("deploy/k8s/base");
        Map<String, Object> controllerSts = DeploymentFilesTest.loadAll(base.resolve("controller.yaml")).get(0);
        Map<String, Object> rolloutSts = DeploymentFilesTest.loadAll(base.resolve("rollout.yaml")).get(0);
        @SuppressWarnings("unchecked")
        String conf = String.valueOf(((Map<String, Object>) DeploymentFilesTest.loadAll(base.resolve("configmap.yaml")).get(0)
                .get("data")).get("tailguard.conf"));
        assertTrue(conf.contains("tailguard.cluster.bootstrap = kubernetes-api") && !conf.contains("seed-nodes ="), conf);
        Path confFile = tmp.resolve("tailguard.conf");
        Files.writeString(confFile, conf);

        // what the service-account mount holds: the API server's CA, the token, the namespace
        ArteryTlsTest.keyPair(tmp, "api.p12", "kubernetes", "-ext", "SAN=ip:127.0.0.1");
        ArteryTlsTest.keytool(tmp, "-exportcert", "-alias", "key", "-keystore", "api.p12", "-storepass", ArteryTlsTest.PW,
                "-rfc", "-file", "ca.crt");
        Files.writeString(tmp.resolve("token"), TOKEN);
        Files.writeString(tmp.resolve("namespace"), NS);
        Path init = tmp.resolve("init");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));

        List<Member> members = new ArrayList<>();
        try (FakeKubernetesApi api = new FakeKubernetesApi(tmp.resolve("api.p12"), ArteryTlsTest.PW, NS, TOKEN)) {
            Pod controller = podOf(controllerSts, 0);
            Pod rollout0 = podOf(rolloutSts, 0);
            Pod rollout1 = podOf(rolloutSts, 1);
            Member a = start(tmp, api, confFile, init, "controller", "controller");
            members.add(a);
            Member b = start(tmp, api, confFile, init, "rollout", "rollout");
            members.add(b);
            api.addPod(controller.name(), controller.labels(), controller.container(), ports(controller, a), "Running", "127.0.0.1");
            // a replica still waiting for a node: listed, but not Running and without an IP
            api.addPod(rollout1.name(), rollout1.labels(), rollout1.container(), ports(rollout1, null), "Pending", null);

            // both JVMs up and asking the API; one running pod is fewer than required-contact-point-nr
            for (Member m : members) {
                String log = ThreeNodeClusterTest.waitForLog(m.node(), "node pekko://", 60);
                assertTrue(log.contains("node pekko://"), "node did not start:\n" + log);
            }
            int before = api.requests.size();
            assertTrue(ArteryTlsTest.await(() -> api.requests.size() >= before + 4, 30), "the nodes do not query the API: " + api.requests);
            for (Member m : members) {
                assertEquals(0.0, up(m), "a member is Up with one discovered pod:\n" + m.node().logText());
            }

            api.addPod(rollout0.name(), rollout0.labels(), rollout0.container(), ports(rollout0, b), "Running", "127.0.0.1");
            for (Member m : members) {
                ThreeNodeClusterTest.waitUntil(m.node(), 45,
                        metrics -> ThreeNodeClusterTest.sum(metrics, "tailguard_cluster_members{status=\"up\"}", null) == 2.0);
            }

            // every request was the pods list of the namespace, with the manifests' selector and the token
            assertFalse(api.requests.isEmpty());
            for (FakeKubernetesApi.Request r : api.requests) {
                assertEquals(new FakeKubernetesApi.Request("/api/v1/namespaces/" + NS + "/pods", "app.kubernetes.io/name=tailguard",
                        "Bearer " + TOKEN, 200), r);
            }
            // one cluster, the same two members on both sides, started by the lowest contact point
            Member lowest = a.management() < b.management() ? a : b;
            for (Member m : members) {
                JsonObject view = JsonParser.parseString(LocalClusterTest.get("http://127.0.0.1:" + m.management() + "/cluster/members"))
                        .getAsJsonObject();
                TreeSet<String> nodes = new TreeSet<>();
                for (JsonElement e : view.getAsJsonArray("members")) {
                    nodes.add(e.getAsJsonObject().get("node").getAsString());
                    assertEquals("Up", e.getAsJsonObject().get("status").getAsString(), view.toString());
                }
                assertEquals(new TreeSet<>(List.of("pekko://tailguard@127.0.0.1:" + a.node().artery(),
                        "pekko://tailguard@127.0.0.1:" + b.node().artery())), nodes, view.toString());
                assertEquals("pekko://tailguard@127.0.0.1:" + lowest.node().artery(), view.get("oldest").getAsString(), view.toString());
            }
        } finally {
            ThreeNodeClusterTest.stopAll(members.stream().map(Member::node).toList());
        }
    }

    /** The pod's container ports by the manifest's names, with this member's ports (0 for a pod with no member). */
    static Map<String, Integer> ports(Pod pod, Member m) {
        Map<String, Integer> p = new LinkedHashMap<>();
        for (String name : pod.portNames()) {
            p.put(name, m == null ? 0 : switch (name) {
                case "artery" -> m.node().artery();
                case "metrics" -> m.node().metricsPort();
                case "management" -> m.management();
                default -> 0; // admin: off in this test
            });
        }
        return p;
    }

    static double up(Member m) {
        try {
            return ThreeNodeClusterTest.sum(m.node().metrics(), "tailguard_cluster_members{status=\"up\"}", null);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /**
     * `node --config <the ConfigMap's file>` with the pod's environment (TAILGUARD_HOSTNAME,
     * TAILGUARD_POD_IP: 127.0.0.1) and the API server's; --set gives free loopback ports, the
     * service-account files' paths, and a small run.
     */
    static Member start(Path tmp, FakeKubernetesApi api, Path conf, Path init, String name, String roles) throws Exception {
        int artery = Ports.freePort();
        int metrics = Ports.freePort();
        int management = Ports.freePort();
        String k8s = "pekko.discovery.kubernetes-api.";
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xss4m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dai.djl.offline=true",
                "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "node", "--config", conf.toString(), "--roles", roles,
                "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + tmp.resolve("run"),
                "--set", "tailguard.train.context-min=64", "--set", "tailguard.train.context-max=96", "--set", "tailguard.train.eval-n=0",
                "--set", "tailguard.rollout.workers=0",
                "--set", "tailguard.metrics.host=127.0.0.1", "--set", "tailguard.metrics.port=" + metrics,
                "--set", "tailguard.admin.host=127.0.0.1", "--set", "tailguard.admin.port=0",
                "--set", "pekko.remote.artery.canonical.port=" + artery,
                "--set", "pekko.remote.artery.bind.hostname=127.0.0.1", "--set", "pekko.remote.artery.bind.port=" + artery,
                "--set", "pekko.management.http.port=" + management,
                "--set", "pekko.management.http.bind-hostname=127.0.0.1", "--set", "pekko.management.http.bind-port=" + management,
                "--set", k8s + "api-ca-path=" + tmp.resolve("ca.crt"),
                "--set", k8s + "api-token-path=" + tmp.resolve("token"),
                "--set", k8s + "pod-namespace-path=" + tmp.resolve("namespace"),
                // two JVMs on two busy cores: a member starved for a few seconds is not dead
                "--set", "pekko.cluster.failure-detector.acceptable-heartbeat-pause=10s"));
        Path log = tmp.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.remove("TAILGUARD_CONFIG");
        env.put("TAILGUARD_HOSTNAME", "127.0.0.1");
        env.put("TAILGUARD_POD_IP", "127.0.0.1");
        env.put("KUBERNETES_SERVICE_HOST", "127.0.0.1");
        env.put("KUBERNETES_SERVICE_PORT", String.valueOf(api.port()));
        env.put("OMP_NUM_THREADS", "1");
        env.put("OMP_WAIT_POLICY", "PASSIVE");
        return new Member(new ThreeNodeClusterTest.Node(pb.start(), log, metrics, artery), management);
    }
}
