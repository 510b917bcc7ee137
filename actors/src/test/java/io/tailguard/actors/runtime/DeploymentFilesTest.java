package io.tailguard.actors.runtime;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.Main;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The deployment files (deploy/, config/) against the code: every Kubernetes manifest parses and
 * has its required fields; labels, selectors, ports, probes, volumes and Secrets cross-reference
 * each other and the run's configuration, which itself validates against reference.conf; the
 * Dockerfile copies what exists and starts the CLI that exists; the dashboard covers what the
 * operator needs. (The live half, a scrape of real nodes, is LocalClusterTest.)
 */
public class DeploymentFilesTest {
    static final String NS = "tailguard";
    static Path root;
    static Path base;
    static List<Map<String, Object>> docs;
    static Config run;

    /** The repository root: the first directory up from here with deploy/local-cluster.sh. */
    public static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("deploy/local-cluster.sh"))) {
                return p;
            }
        }
        throw new AssertionError("no deploy/local-cluster.sh above " + Path.of("").toAbsolutePath());
    }

    @SuppressWarnings("unchecked")
    public static List<Map<String, Object>> loadAll(Path file) throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object o : new Yaml(new SafeConstructor(new LoaderOptions())).loadAll(Files.readString(file))) {
            if (o != null) {
                out.add((Map<String, Object>) o);
            }
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static <T> T at(Object node, String... path) {
        Object o = node;
        for (String k : path) {
            if (o instanceof Map<?, ?> m) {
                o = m.get(k);
            } else if (o instanceof List<?> l) {
                o = l.get(Integer.parseInt(k));
            } else {
                return null;
            }
        }
        return (T) o;
    }

    static String str(Object node, String... path) {
        Object o = at(node, path);
        return o == null ? null : String.valueOf(o);
    }

    /** The pods' environment values the ConfigMap's ${VAR}s take (test stand-ins; the token is not real). */
    static Config podEnv(boolean withToken) {
        Map<String, Object> env = new HashMap<>();
        env.put("TAILGUARD_HOSTNAME", "tailguard-controller-0.tailguard-controller");
        env.put("TAILGUARD_POD_IP", "10.1.2.3");
        if (withToken) {
            env.put("TAILGUARD_ADMIN_TOKEN", "test-token");
        }
        return ConfigFactory.parseMap(env);
    }

    static Config resolveConfigMap(String hocon, boolean withToken) {
        // as the node does it: the file over the references, resolved (against the environment)
        return ConfigFactory.parseString(hocon).withFallback(ConfigFactory.load()).withFallback(podEnv(withToken)).resolve();
    }

    @BeforeAll
    static void load() throws IOException {
        root = repoRoot();
        base = root.resolve("deploy/k8s/base");
        docs = new ArrayList<>();
        for (String f : kustomizationResources(base)) {
            docs.addAll(loadAll(base.resolve(f)));
        }
        run = resolveConfigMap(configMapFile(), true);
    }

    static List<String> kustomizationResources(Path dir) throws IOException {
        List<String> r = at(loadAll(dir.resolve("kustomization.yaml")).get(0), "resources");
        assertNotNull(r, dir + "/kustomization.yaml: resources");
        return r;
    }

    static List<Map<String, Object>> ofKind(String kind) {
        return docs.stream().filter(d -> kind.equals(d.get("kind"))).toList();
    }

    static Map<String, Object> named(String kind, String name) {
        return ofKind(kind).stream().filter(d -> name.equals(str(d, "metadata", "name"))).findFirst()
                .orElseThrow(() -> new AssertionError("no " + kind + " " + name + " in " + base));
    }

    static String configMapFile() {
        Map<String, Object> data = at(named("ConfigMap", "tailguard-config"), "data");
        return String.valueOf(data.get("tailguard.conf"));
    }

    static List<Map<String, Object>> workloads() {
        List<Map<String, Object>> w = new ArrayList<>(ofKind("StatefulSet"));
        w.addAll(ofKind("Deployment"));
        w.addAll(ofKind("DaemonSet"));
        return w;
    }

    static Map<String, Object> container(Map<String, Object> workload) {
        List<Map<String, Object>> cs = at(workload, "spec", "template", "spec", "containers");
        assertEquals(1, cs.size(), name(workload) + ": one container");
        return cs.get(0);
    }

    static String name(Map<String, Object> d) {
        return d.get("kind") + " " + str(d, "metadata", "name");
    }

    static Map<String, Integer> ports(Map<String, Object> c) {
        Map<String, Integer> m = new HashMap<>();
        List<Map<String, Object>> ps = at(c, "ports");
        for (Map<String, Object> p : ps) {
            m.put(String.valueOf(p.get("name")), (Integer) p.get("containerPort"));
        }
        return m;
    }

    static Map<String, Map<String, Object>> env(Map<String, Object> c) {
        Map<String, Map<String, Object>> m = new HashMap<>();
        List<Map<String, Object>> es = at(c, "env");
        for (Map<String, Object> e : es) {
            m.put(String.valueOf(e.get("name")), e);
        }
        return m;
    }

    @Test
    void everyManifestParsesWithItsRequiredFields() throws IOException {
        Set<String> listed = new TreeSet<>(kustomizationResources(base));
        try (Stream<Path> files = Files.list(base)) {
            Set<String> present = files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".yaml") && !n.equals("kustomization.yaml")).collect(Collectors.toCollection(TreeSet::new));
            assertEquals(present, listed, "kustomization.yaml lists every manifest of " + base);
        }
        Set<String> kinds = new TreeSet<>();
        for (Map<String, Object> d : docs) {
            String where = name(d);
            assertNotNull(d.get("apiVersion"), where + ": apiVersion");
            assertNotNull(d.get("kind"), where + ": kind");
            assertNotNull(str(d, "metadata", "name"), where + ": metadata.name");
            if (!"Namespace".equals(d.get("kind"))) {
                assertEquals(NS, str(d, "metadata", "namespace"), where + ": metadata.namespace");
            }
            assertEquals("tailguard", str(d, "metadata", "labels", "app.kubernetes.io/part-of"), where + ": part-of label");
            kinds.add(String.valueOf(d.get("kind")));
        }
        assertTrue(kinds.containsAll(Set.of("Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim",
                "Service", "StatefulSet", "NetworkPolicy")), "kinds: " + kinds);
        // the ServiceMonitor (outside the kustomization: it needs the operator's CRD)
        Map<String, Object> sm = loadAll(root.resolve("deploy/k8s/servicemonitor.yaml")).get(0);
        assertEquals("ServiceMonitor", sm.get("kind"));
        assertEquals("metrics", str(sm, "spec", "endpoints", "0", "port"));
        assertEquals("tailguard", str(sm, "spec", "selector", "matchLabels", "app.kubernetes.io/part-of"));
    }

    @Test
    void theConfigMapIsAValidRunConfigurationWithLiveTunableKeys() {
        // every tailguard.* key is known to reference.conf, with valid values
        RunSettings s = RunSettings.parse(run, "deploy/k8s/base/configmap.yaml");
        assertTrue(run.getBoolean("tailguard.management.enabled"), "probes need Pekko Management");
        assertEquals("test-token", s.admin().token());
        // without the Secret the token is empty, and a non-loopback admin host then refuses to start
        Config noToken = resolveConfigMap(configMapFile(), false);
        assertEquals("", noToken.getString("tailguard.admin.token"));
        assertFalse(noToken.getString("tailguard.admin.host").startsWith("127."));
        // the file as the watcher reads it (unresolved): its live-tunable keys are there
        Map<String, String> tunables = ConfigWatcher.tunables(ConfigFactory.parseString(configMapFile()));
        assertTrue(tunables.keySet().containsAll(Set.of("tailguard.controller.tau", "tailguard.controller.margin",
                "tailguard.controller.hysteresis", "tailguard.controller.bin-width", "tailguard.controller.min-budget",
                "tailguard.buffer.staleness", "tailguard.learner.lr")), "tunables: " + tunables);
        // Artery transport: tcp unless the TLS overlay sets the variable
        assertEquals("tcp", run.getString("pekko.remote.artery.transport"));
        Config tls = ConfigFactory.parseString(configMapFile()).withFallback(ConfigFactory.load()).withFallback(podEnv(true))
                .withFallback(ConfigFactory.parseMap(Map.of("TAILGUARD_ARTERY_TRANSPORT", "tls-tcp",
                        "TAILGUARD_TLS_KEYSTORE", "/k.p12", "TAILGUARD_TLS_TRUSTSTORE", "/t.p12"))).resolve();
        assertEquals("tls-tcp", tls.getString("pekko.remote.artery.transport"));
        assertEquals("/k.p12", tls.getString("pekko.remote.artery.ssl.config-ssl-engine.key-store"));
    }

    @Test
    void workloadsSelectorsPortsProbesAndVolumesAgreeWithTheConfiguration() {
        int artery = run.getInt("pekko.remote.artery.canonical.port");
        int metrics = run.getInt("tailguard.metrics.port");
        int admin = run.getInt("tailguard.admin.port");
        int management = run.getInt("pekko.management.http.port");
        assertEquals(artery, run.getInt("pekko.remote.artery.bind.port"));
        assertEquals(management, run.getInt("pekko.management.http.bind-port"));
        assertEquals(2, workloads().size());
        Set<String> components = new TreeSet<>();
        for (Map<String, Object> w : workloads()) {
            String where = name(w);
            Map<String, Object> match = at(w, "spec", "selector", "matchLabels");
            Map<String, Object> labels = at(w, "spec", "template", "metadata", "labels");
            assertTrue(labels.entrySet().containsAll(match.entrySet()), where + ": selector " + match + " not in the pod labels " + labels);
            components.add(String.valueOf(labels.get("app.kubernetes.io/component")));
            Map<String, Object> c = container(w);
            Map<String, Integer> ports = ports(c);
            assertEquals(artery, ports.get("artery"), where + ": artery port");
            assertEquals(metrics, ports.get("metrics"), where + ": metrics port");
            assertEquals(management, ports.get("management"), where + ": management port");
            Map<String, Map<String, Object>> env = env(c);
            Set<String> roles = Set.of(str(env.get("TAILGUARD_ROLES"), "value").split(","));
            assertTrue(TailguardNode.ROLES.containsAll(roles), where + ": roles " + roles);
            if (roles.contains("controller")) {
                assertEquals(admin, ports.get("admin"), where + ": admin port");
                assertNotNull(at(env.get("TAILGUARD_ADMIN_TOKEN"), "valueFrom", "secretKeyRef"), where + ": admin token from a Secret");
            }
            // Prometheus annotations point at the metrics port
            Map<String, Object> ann = at(w, "spec", "template", "metadata", "annotations");
            assertEquals("true", ann.get("prometheus.io/scrape"), where);
            assertEquals(String.valueOf(metrics), ann.get("prometheus.io/port"), where);
            assertEquals("/metrics", ann.get("prometheus.io/path"), where);
            // probes on the management routes
            assertEquals("/" + run.getString("pekko.management.health-checks.readiness-path"), str(c, "readinessProbe", "httpGet", "path"), where);
            assertEquals("/" + run.getString("pekko.management.health-checks.liveness-path"), str(c, "livenessProbe", "httpGet", "path"), where);
            for (String probe : List.of("readinessProbe", "livenessProbe", "startupProbe")) {
                assertEquals("management", str(c, probe, "httpGet", "port"), where + ": " + probe + " port");
            }
            // resource requests
            assertNotNull(str(c, "resources", "requests", "cpu"), where + ": cpu request");
            assertNotNull(str(c, "resources", "requests", "memory"), where + ": memory request");
            // volumes: every mount names a volume; the config volume is the ConfigMap (a directory
            // mount, so edits reach the pod), the store volume is the RWX claim
            List<Map<String, Object>> vols = at(w, "spec", "template", "spec", "volumes");
            Map<String, Map<String, Object>> byName = new HashMap<>();
            vols.forEach(v -> byName.put(String.valueOf(v.get("name")), v));
            List<Map<String, Object>> mounts = at(c, "volumeMounts");
            Map<String, String> mountPath = new HashMap<>();
            for (Map<String, Object> m : mounts) {
                assertTrue(byName.containsKey(String.valueOf(m.get("name"))), where + ": mount of unknown volume " + m.get("name"));
                assertFalse(m.containsKey("subPath"), where + ": a subPath mount never sees ConfigMap edits");
                mountPath.put(String.valueOf(m.get("name")), String.valueOf(m.get("mountPath")));
            }
            String cm = str(byName.get("config"), "configMap", "name");
            Map<String, Object> data = at(named("ConfigMap", cm), "data");
            Path conf = Path.of(str(env.get("TAILGUARD_CONFIG"), "value"));
            assertEquals(mountPath.get("config"), conf.getParent().toString(), where + ": TAILGUARD_CONFIG is in the config mount");
            assertTrue(data.containsKey(conf.getFileName().toString()), where + ": ConfigMap " + cm + " has " + conf.getFileName());
            String claim = str(byName.get("store"), "persistentVolumeClaim", "claimName");
            List<String> modes = at(named("PersistentVolumeClaim", claim), "spec", "accessModes");
            assertTrue(modes.contains("ReadWriteMany"), claim + ": every member shares the store");
            String store = mountPath.get("store");
            assertTrue(run.getString("tailguard.train.out").startsWith(store + "/"), "tailguard.train.out on the shared volume " + store);
            assertTrue(str(env.get("TAILGUARD_CACHE"), "value").startsWith(store + "/"), where + ": TAILGUARD_CACHE on the shared volume");
            // the service-account token, CA and namespace are mounted: Cluster Bootstrap lists the pods with them
            assertEquals(Boolean.TRUE, at(w, "spec", "template", "spec", "automountServiceAccountToken"), where);
            assertEquals("tailguard", str(w, "spec", "template", "spec", "serviceAccountName"), where);
            named("ServiceAccount", "tailguard");
            assertEquals(Boolean.TRUE, at(w, "spec", "template", "spec", "securityContext", "runAsNonRoot"), where);
        }
        assertEquals(Set.of("controller", "rollout"), components);
    }

    @Test
    void clusterBootstrapFindsEveryWorkloadsPodsThroughTheKubernetesApiWithNoSeedNodes() {
        // no static seed list: Cluster Bootstrap through the Kubernetes API, which runs on Pekko Management
        assertEquals(RunSettings.Bootstrap.KUBERNETES_API, RunSettings.parse(run, "configmap").bootstrap());
        assertEquals("kubernetes-api", run.getString("tailguard.cluster.bootstrap"));
        assertTrue(run.getStringList("pekko.cluster.seed-nodes").isEmpty(), "seed nodes in k8s: " + run.getStringList("pekko.cluster.seed-nodes"));
        assertTrue(run.getBoolean("tailguard.management.enabled"));
        // the discovery and the bootstrap are on the classpath (their reference.conf), and every key the
        // ConfigMap sets under them is one of theirs (a misspelt key would be ignored silently)
        Config reference = ConfigFactory.defaultReference();
        Config file = ConfigFactory.parseString(configMapFile()).withFallback(podEnv(true)).resolve();
        for (String section : List.of("pekko.discovery.kubernetes-api", "pekko.management.cluster.bootstrap", "pekko.management.http")) {
            assertTrue(reference.hasPath(section), section + " not in any reference.conf");
            for (Map.Entry<String, com.typesafe.config.ConfigValue> e : file.getConfig(section).entrySet()) {
                assertTrue(reference.hasPath(section + "." + e.getKey()), "configmap.yaml: " + section + "." + e.getKey() + ": not a Pekko key");
            }
        }
        assertEquals("org.apache.pekko.discovery.kubernetes.KubernetesApiServiceDiscovery", run.getString("pekko.discovery.kubernetes-api.class"));
        // the pods' namespace, token and CA come from the service-account mount (the defaults)
        String mount = "/var/run/secrets/kubernetes.io/serviceaccount/";
        for (String k : List.of("api-ca-path", "api-token-path", "pod-namespace-path")) {
            assertTrue(run.getString("pekko.discovery.kubernetes-api." + k).startsWith(mount), k);
        }
        assertEquals("<pod-namespace>", run.getString("pekko.discovery.kubernetes-api.pod-namespace"), "namespace from the mount");
        // the label selector the discovery sends selects the pods of every workload
        String discovery = "pekko.management.cluster.bootstrap.contact-point-discovery.";
        String selector = String.format(run.getString("pekko.discovery.kubernetes-api.pod-label-selector"),
                run.getString(discovery + "service-name"));
        Map<String, String> terms = new HashMap<>();
        for (String term : selector.split(",")) {
            String[] kv = term.split("=", 2);
            assertEquals(2, kv.length, "an equality selector: " + selector);
            terms.put(kv[0].strip(), kv[1].strip());
        }
        int management = run.getInt("pekko.management.http.port");
        String portName = run.getString(discovery + "port-name");
        int replicas = 0;
        for (Map<String, Object> w : workloads()) {
            Map<String, Object> labels = at(w, "spec", "template", "metadata", "labels");
            for (Map.Entry<String, String> t : terms.entrySet()) {
                assertEquals(t.getValue(), labels.get(t.getKey()), name(w) + ": its pods are not selected by " + selector);
            }
            // the bootstrap probes the container port of that name: Pekko Management's
            assertEquals(management, ports(container(w)).get(portName), name(w) + ": port " + portName);
            // the bootstrap recognises itself among the listed pods by the pod IP it reports
            Map<String, Map<String, Object>> env = env(container(w));
            assertEquals("status.podIP", str(env.get("TAILGUARD_POD_IP"), "valueFrom", "fieldRef", "fieldPath"), name(w));
            replicas += (Integer) at(w, "spec", "replicas");
        }
        assertTrue(run.getBoolean("pekko.discovery.kubernetes-api.use-raw-ip"), "contact points by IP (no pod DNS records needed)");
        // (podEnv: TAILGUARD_POD_IP = 10.1.2.3, TAILGUARD_HOSTNAME a stable name)
        assertEquals("10.1.2.3", run.getString("pekko.management.http.hostname"), "management's hostname is the pod IP");
        int required = run.getInt(discovery + "required-contact-point-nr");
        assertTrue(required >= 2 && required <= replicas, "required-contact-point-nr " + required + " in [2, " + replicas + " pods]");

        // RBAC: the pods' ServiceAccount may get/watch/list pods in the namespace, and nothing more
        Map<String, Object> binding = ofKind("RoleBinding").stream().filter(b -> {
            List<Map<String, Object>> subjects = at(b, "subjects");
            return subjects.stream().anyMatch(sub -> "ServiceAccount".equals(sub.get("kind")) && "tailguard".equals(sub.get("name"))
                    && NS.equals(sub.get("namespace")));
        }).findFirst().orElseThrow(() -> new AssertionError("no RoleBinding for the ServiceAccount tailguard"));
        assertEquals("Role", str(binding, "roleRef", "kind"));
        assertEquals("rbac.authorization.k8s.io", str(binding, "roleRef", "apiGroup"));
        Map<String, Object> role = named("Role", str(binding, "roleRef", "name"));
        List<Map<String, Object>> rules = at(role, "rules");
        assertEquals(1, rules.size(), "one rule");
        assertEquals(List.of(""), rules.get(0).get("apiGroups"), "the core API group");
        assertEquals(List.of("pods"), rules.get(0).get("resources"));
        assertEquals(Set.of("get", "watch", "list"), Set.copyOf((List<?>) rules.get(0).get("verbs")));
        assertTrue(ofKind("ClusterRole").isEmpty() && ofKind("ClusterRoleBinding").isEmpty(), "namespaced RBAC only");
        for (Map<String, Object> w : workloads()) {
            assertEquals("tailguard", str(w, "spec", "template", "spec", "serviceAccountName"), name(w));
        }
    }

    @Test
    void arteryAddressesAreStableNamesOfStatefulSetPodsThroughHeadlessServices() {
        for (Map<String, Object> sts : ofKind("StatefulSet")) {
            String service = str(sts, "spec", "serviceName");
            Map<String, Object> svc = named("Service", service);
            assertEquals("None", str(svc, "spec", "clusterIP"), service + " must be headless");
            assertEquals(Boolean.TRUE, at(svc, "spec", "publishNotReadyAddresses"), service + ": members resolve each other before they are ready");
            Map<String, Object> labels = at(sts, "spec", "template", "metadata", "labels");
            Map<String, Object> sel = at(svc, "spec", "selector");
            assertTrue(labels.entrySet().containsAll(sel.entrySet()), service + " selects the StatefulSet's pods");
            // each pod's Artery address is its stable name (Artery compares addresses literally)
            Map<String, Map<String, Object>> env = env(container(sts));
            assertEquals("$(POD_NAME)." + service, str(env.get("TAILGUARD_HOSTNAME"), "value"), name(sts));
            assertEquals("metadata.name", str(env.get("POD_NAME"), "valueFrom", "fieldRef", "fieldPath"), name(sts));
        }
        assertEquals("tailguard-controller-0.tailguard-controller", run.getString("pekko.remote.artery.canonical.hostname"));
        // every Service's selector picks pods of a workload, and its target ports are their port names
        for (Map<String, Object> s : ofKind("Service")) {
            Map<String, Object> selector = at(s, "spec", "selector");
            List<Map<String, Object>> targets = workloads().stream().filter(w -> {
                Map<String, Object> l = at(w, "spec", "template", "metadata", "labels");
                return l.entrySet().containsAll(selector.entrySet());
            }).toList();
            assertFalse(targets.isEmpty(), name(s) + ": selects no pods");
            List<Map<String, Object>> ps = at(s, "spec", "ports");
            for (Map<String, Object> p : ps) {
                for (Map<String, Object> w : targets) {
                    Map<String, Integer> cp = ports(container(w));
                    assertTrue(cp.containsKey(String.valueOf(p.get("targetPort"))), name(s) + ": targetPort " + p.get("targetPort") + " not on " + name(w));
                    assertEquals(cp.get(String.valueOf(p.get("name"))), p.get("port"), name(s) + ": port " + p.get("name"));
                }
            }
        }
        // the NetworkPolicy covers the pods and the ports in use
        Map<String, Object> np = ofKind("NetworkPolicy").get(0);
        Map<String, Object> npSel = at(np, "spec", "podSelector", "matchLabels");
        for (Map<String, Object> w : workloads()) {
            Map<String, Object> l = at(w, "spec", "template", "metadata", "labels");
            assertTrue(l.entrySet().containsAll(npSel.entrySet()), name(w) + " under the NetworkPolicy");
        }
        List<Map<String, Object>> peers = at(np, "spec", "ingress", "0", "ports");
        Set<Integer> allowed = peers.stream().map(p -> (Integer) p.get("port")).collect(Collectors.toSet());
        assertEquals(Set.of(run.getInt("pekko.remote.artery.canonical.port"), run.getInt("tailguard.metrics.port"),
                run.getInt("tailguard.admin.port"), run.getInt("pekko.management.http.port")), allowed);
    }

    @Test
    @SuppressWarnings("unchecked")
    void overlaysPatchWhatExistsAndSecretsComeOnlyFromSecrets() throws IOException {
        for (String overlay : List.of("gpu", "tls")) {
            Path dir = root.resolve("deploy/k8s").resolve(overlay);
            Map<String, Object> k = loadAll(dir.resolve("kustomization.yaml")).get(0);
            assertEquals(List.of("../base"), k.get("resources"));
            List<Map<String, Object>> patches = (List<Map<String, Object>>) k.get("patches");
            Set<String> targets = new TreeSet<>();
            for (Map<String, Object> p : patches) {
                named(str(p, "target", "kind"), str(p, "target", "name"));
                targets.add(str(p, "target", "name"));
                List<Object> ops = new Yaml(new SafeConstructor(new LoaderOptions())).load(Files.readString(dir.resolve(str(p, "path"))));
                assertFalse(ops.isEmpty(), overlay + ": empty patch");
            }
            assertEquals(Set.of("tailguard-controller", "tailguard-rollout"), targets, overlay + " patches the learner and rollout pods");
        }
        String gpu = Files.readString(root.resolve("deploy/k8s/gpu/gpu-patch.yaml"));
        assertTrue(gpu.contains("nvidia.com~1gpu"), "the gpu overlay asks for nvidia.com/gpu");
        Matcher dev = Pattern.compile("name: TAILGUARD_DEVICE\\s+value: (\\S+)").matcher(gpu);
        assertTrue(dev.find() && dev.group(1).matches("gpu:\\d+"), "TAILGUARD_DEVICE gpu:N");
        // the TLS overlay sets exactly the variables the ConfigMap reads
        String tls = Files.readString(root.resolve("deploy/k8s/tls/tls-patch.yaml"));
        Set<String> read = new TreeSet<>();
        Matcher m = Pattern.compile("\\$\\{\\?(TAILGUARD_(?:TLS|ARTERY)_[A-Z_]+)}").matcher(configMapFile());
        while (m.find()) {
            read.add(m.group(1));
        }
        Set<String> set = new TreeSet<>();
        Matcher e = Pattern.compile("name: (TAILGUARD_[A-Z_]+)").matcher(tls);
        while (e.find()) {
            set.add(e.group(1));
        }
        assertEquals(read, set, "TLS variables");
        // no Secret object and no literal secret anywhere in the manifests and overlays
        assertTrue(ofKind("Secret").isEmpty(), "no Secret in the manifests");
        List<Path> all = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root.resolve("deploy"))) {
            s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).forEach(all::add);
        }
        Pattern secretEnv = Pattern.compile("name: (\\S*(?:TOKEN|PASSWORD|SECRET)\\S*)\\s*\\n\\s*(value|valueFrom):");
        for (Path p : all) {
            String text = Files.readString(p);
            assertFalse(text.contains("kind: Secret"), p + " holds a Secret");
            Matcher s = secretEnv.matcher(text);
            while (s.find()) {
                assertEquals("valueFrom", s.group(2), p + ": " + s.group(1) + " must come from a Secret");
            }
        }
    }

    @Test
    void theDockerfileCopiesWhatExistsAndStartsTheCli() throws IOException {
        Path dockerfile = root.resolve("deploy/docker/Dockerfile");
        List<String> lines = Files.readAllLines(dockerfile);
        String version = Pattern.compile("<version>([^<]+)</version>").matcher(Files.readString(root.resolve("bench/pom.xml")))
                .results().map(r -> r.group(1)).findFirst().orElseThrow();
        Map<String, String> copied = new HashMap<>();
        Set<String> modulesCopied = new TreeSet<>();
        for (String line : lines) {
            String l = line.strip();
            if (!l.startsWith("COPY ")) {
                continue;
            }
            List<String> parts = new ArrayList<>(List.of(l.substring(5).strip().split("\\s+")));
            boolean fromBuild = parts.get(0).startsWith("--from=");
            parts.removeIf(p -> p.startsWith("--"));
            String dest = parts.remove(parts.size() - 1);
            for (String src : parts) {
                if (fromBuild) {
                    assertTrue(src.equals("/src/bench/target/tailguard-bench-" + version + ".jar") || src.equals("/src/bench/target/lib/"),
                            "COPY --from=build " + src + ": not what the build stage makes");
                } else {
                    assertTrue(Files.exists(root.resolve(src)), dockerfile + ": COPY source " + src + " does not exist");
                    copied.put(src, dest);
                    if (src.endsWith("/src")) {
                        modulesCopied.add(src.substring(0, src.length() - 4));
                    }
                }
            }
        }
        // every module of the reactor is in the build stage
        Set<String> modules = Pattern.compile("<module>([^<]+)</module>").matcher(Files.readString(root.resolve("pom.xml")))
                .results().map(r -> r.group(1)).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(modules, modulesCopied, "modules copied into the build stage");
        for (String mod : modules) {
            assertTrue(copied.containsKey(mod + "/pom.xml"), mod + "/pom.xml copied");
        }
        // the entry point is the copied entrypoint.sh, which runs the node command of the copied launcher
        String entry = lines.stream().filter(l -> l.startsWith("ENTRYPOINT")).findFirst().orElseThrow();
        JsonArray argv = JsonParser.parseString(entry.substring("ENTRYPOINT".length()).strip()).getAsJsonArray();
        String binDir = copied.get("deploy/docker/entrypoint.sh");
        assertEquals(binDir + "entrypoint.sh", argv.get(0).getAsString());
        assertEquals(binDir, copied.get("deploy/docker/tailguard"));
        String launcher = Files.readString(root.resolve("deploy/docker/tailguard"));
        assertTrue(launcher.contains(" " + Main.class.getName() + " \"$@\""), "the launcher runs " + Main.class.getName());
        assertTrue(launcher.contains("-Dai.djl.offline=true"), "offline DJL");
        String lib = Pattern.compile("-cp \"\\$HOME_DIR/(\\S+)/\\*\"").matcher(launcher).results().map(r -> r.group(1)).findFirst().orElseThrow();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("COPY --from=build") && l.endsWith("/opt/tailguard/" + lib + "/")),
                "the launcher's classpath is where the jars are copied");
        assertTrue(lines.stream().anyMatch(l -> l.contains("TAILGUARD_HOME=/opt/tailguard")));
        // the node command and its options exist in the CLI
        String ep = Files.readString(root.resolve("deploy/docker/entrypoint.sh"));
        assertTrue(ep.contains("args=(node --config \"$TAILGUARD_CONFIG\" --roles \"$TAILGUARD_ROLES\")"), ep);
        CommandLine node = new CommandLine(new Main()).getSubcommands().get("node");
        for (String opt : List.of("--config", "--roles", "--device")) {
            assertNotNull(node.getCommandSpec().findOption(opt), "node " + opt);
            assertTrue(ep.contains(opt), "entrypoint.sh passes " + opt);
        }
        assertTrue(Files.isExecutable(root.resolve("deploy/docker/entrypoint.sh")) && Files.isExecutable(root.resolve("deploy/docker/tailguard")));
        // the default configuration named in the image exists among the copied files
        Matcher conf = Pattern.compile("TAILGUARD_CONFIG=/opt/tailguard/(\\S+)").matcher(String.join("\n", lines));
        assertTrue(conf.find());
        assertTrue(Files.isRegularFile(root.resolve(conf.group(1))), conf.group(1));
        // the exposed ports are the configuration's; no secret in the image
        Set<Integer> exposed = lines.stream().filter(l -> l.startsWith("EXPOSE")).flatMap(l -> Stream.of(l.substring(6).strip().split("\\s+")))
                .map(Integer::parseInt).collect(Collectors.toSet());
        assertEquals(Set.of(run.getInt("pekko.remote.artery.canonical.port"), run.getInt("tailguard.metrics.port"),
                run.getInt("tailguard.admin.port"), run.getInt("pekko.management.http.port")), exposed);
        for (String l : lines) {
            if (l.startsWith("ENV") || l.startsWith("ARG")) {
                assertFalse(l.matches("(?i).*(token|password|secret).*"), dockerfile + ": " + l);
            }
        }
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("USER ") && !l.contains("root") && !l.contains(" 0")), "runs as a user");
        String ignore = Files.readString(root.resolve(".dockerignore"));
        assertTrue(ignore.contains("**/target/") && ignore.contains(".git/"), ".dockerignore keeps build outputs and history out");
    }

    /** Metric names of a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
    static Set<String> metricNames(String expr) {
        String e = expr.replaceAll("\"(?:[^\"\\\\]|\\\\.)*\"", "\"\"")
                .replaceAll("\\{[^}]*}", " ")
                .replaceAll("\\[[^]]*]", " ")
                .replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ");
        Set<String> keywords = Set.of("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan");
        Set<String> names = new TreeSet<>();
        Matcher m = Pattern.compile("(?<![\\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\\s*\\()?").matcher(e);
        while (m.find()) {
            if (m.group(2) == null && !keywords.contains(m.group(1).toLowerCase())) {
                names.add(m.group(1));
            }
        }
        return names;
    }

    /** Every PromQL expression of the dashboard. */
    static List<String> dashboardExpressions(Path dashboard) throws IOException {
        List<String> exprs = new ArrayList<>();
        collect(JsonParser.parseString(Files.readString(dashboard)), exprs);
        return exprs;
    }

    private static void collect(JsonElement e, List<String> out) {
        if (e.isJsonObject()) {
            for (Map.Entry<String, JsonElement> kv : e.getAsJsonObject().entrySet()) {
                if (kv.getKey().equals("expr")) {
                    out.add(kv.getValue().getAsString());
                } else {
                    collect(kv.getValue(), out);
                }
            }
        } else if (e.isJsonArray()) {
            e.getAsJsonArray().forEach(x -> collect(x, out));
        }
    }

    public static Set<String> dashboardMetricNames(Path dashboard) throws IOException {
        Set<String> names = new TreeSet<>();
        for (String expr : dashboardExpressions(dashboard)) {
            names.addAll(metricNames(expr));
        }
        return names;
    }

    @Test
    void metricNamesComeOutOfPromQl() {
        assertEquals(Set.of("tailguard_rollout_tokens_total"),
                metricNames("sum by (mode) (rate(tailguard_rollout_tokens_total{mode=\"sparse\"}[1m]))"));
        assertEquals(Set.of("tailguard_policy_version", "tailguard_worker_policy_version"),
                metricNames("max(tailguard_policy_version) - on (job) group_left min(tailguard_worker_policy_version) * 60"));
        assertEquals(Set.of("jvm_memory_used_bytes"), metricNames("sum by (instance) (jvm_memory_used_bytes{area=\"heap\"})"));
    }

    @Test
    void theDashboardCoversTheOperatorsQuestions() throws IOException {
        Path dashboard = root.resolve("deploy/grafana/tailguard.json");
        JsonObject d = JsonParser.parseString(Files.readString(dashboard)).getAsJsonObject();
        assertEquals("tailguard", d.get("uid").getAsString());
        Set<String> names = dashboardMetricNames(dashboard);
        // α tails and budgets per bin, rollout and learner throughput, reward and pass rate,
        // staleness, losses, TIS truncation, cluster members
        for (String need : List.of("tailguard_alpha_p5", "tailguard_tau", "tailguard_kv_budget_tokens", "tailguard_rollout_tokens_total",
                "tailguard_learner_tokens_per_second", "tailguard_reward_mean", "tailguard_pass_rate", "tailguard_staleness_versions",
                "tailguard_loss", "tailguard_tis_truncated_fraction", "tailguard_cluster_members",
                // the approximation budget: which option is in use, its predicted and measured speed, its schedule
                "tailguard_rollout_option_in_use", "tailguard_rollout_option_predicted_speedup",
                "tailguard_rollout_option_measured_speedup", "tailguard_rollout_option_kv_budget_tokens")) {
            assertTrue(names.contains(need), "the dashboard has no query on " + need);
        }
        // every query panel reads the dashboard's Prometheus data source variable
        for (JsonElement p : d.getAsJsonArray("panels")) {
            JsonObject panel = p.getAsJsonObject();
            if (panel.has("targets")) {
                assertEquals("${datasource}", panel.getAsJsonObject("datasource").get("uid").getAsString(), panel.get("title").getAsString());
                assertTrue(panel.getAsJsonArray("targets").size() > 0);
            }
        }
        // the per-bin panels legend by bin
        String text = Files.readString(dashboard);
        assertTrue(text.contains("max by (bin) (tailguard_alpha_p5)") && text.contains("max by (bin) (tailguard_kv_budget_tokens)"));
    }

    @Test
    void prometheusConfigurationsAgreeWithTheScriptAndTheAnnotations() throws Exception {
        Map<String, Object> local = loadAll(root.resolve("deploy/prometheus/prometheus.yml")).get(0);
        List<Map<String, Object>> jobs = at(local, "scrape_configs");
        Map<String, Object> job = jobs.get(0);
        assertEquals("tailguard", job.get("job_name"));
        assertEquals("/metrics", job.get("metrics_path"));
        List<String> files = at(job, "file_sd_configs", "0", "files");
        Path targets = root.resolve("deploy/prometheus").resolve(files.get(0)).normalize();
        assertEquals(root.resolve("runs/local-cluster/prometheus-targets.json"), targets, "the default directory of local-cluster.sh");
        String script = Files.readString(root.resolve("deploy/local-cluster.sh"));
        assertTrue(script.contains("dir=\"$ROOT/runs/local-cluster\"") && script.contains("$dir/prometheus-targets.json"));
        // the in-cluster job keeps pods by the annotations the workloads carry
        String k8s = Files.readString(root.resolve("deploy/prometheus/kubernetes.yml"));
        Map<String, Object> ann = at(workloads().get(0), "spec", "template", "metadata", "annotations");
        for (String a : ann.keySet()) {
            assertTrue(k8s.contains("__meta_kubernetes_pod_annotation_" + a.replaceAll("[./]", "_")), "kubernetes.yml reads " + a);
        }
        assertEquals("tailguard", str(loadAll(root.resolve("deploy/prometheus/kubernetes.yml")).get(0), "scrape_configs", "0", "job_name"));
        // Debian's promtool, when installed, checks the local file for real
        Path promtool = Stream.of(System.getenv().getOrDefault("PATH", "/usr/bin").split(java.io.File.pathSeparator))
                .map(p -> Path.of(p, "promtool")).filter(Files::isExecutable).findFirst().orElse(null);
        if (promtool != null) {
            Process p = new ProcessBuilder(promtool.toString(), "check", "config", root.resolve("deploy/prometheus/prometheus.yml").toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.waitFor(), out);
        }
    }

    @Test
    void clusterConfigurationsLoadAndTlsNeedsItsStores() {
        Config cluster = RunConfigs.load(root.resolve("config/cluster.conf"), Map.of());
        assertEquals(RunSettings.Bootstrap.SEED_NODES, RunSettings.parse(cluster, "config/cluster.conf").bootstrap());
        assertFalse(cluster.getStringList("pekko.cluster.seed-nodes").isEmpty());
        assertTrue(cluster.getBoolean("pekko.coordinated-shutdown.run-by-jvm-shutdown-hook"), "SIGTERM leaves the cluster");
        Map<String, Object> stores = Map.of("TAILGUARD_TLS_KEYSTORE", "/k.p12", "TAILGUARD_TLS_KEYSTORE_PASSWORD", "pw",
                "TAILGUARD_TLS_TRUSTSTORE", "/t.p12", "TAILGUARD_TLS_TRUSTSTORE_PASSWORD", "pw2");
        Config tls = RunConfigs.load(root.resolve("config/cluster-tls.conf"), stores);
        assertEquals("tls-tcp", tls.getString("pekko.remote.artery.transport"));
        assertEquals("/k.p12", tls.getString("pekko.remote.artery.ssl.config-ssl-engine.key-store"));
        assertEquals("pw2", tls.getString("pekko.remote.artery.ssl.config-ssl-engine.trust-store-password"));
        assertTrue(tls.getBoolean("pekko.remote.artery.ssl.config-ssl-engine.require-mutual-authentication"));
        assertEquals(cluster.getStringList("pekko.cluster.seed-nodes"), tls.getStringList("pekko.cluster.seed-nodes"));
        try {
            RunConfigs.load(root.resolve("config/cluster-tls.conf"), Map.of());
            fail("cluster-tls.conf resolved without its stores");
        } catch (com.typesafe.config.ConfigException.UnresolvedSubstitution e) {
            assertTrue(e.getMessage().contains("${TAILGUARD_TLS_"), e.getMessage());
        }
    }

    /** A configuration file as `node --config` reads it, with stand-ins for environment variables. */
    static final class RunConfigs {
        static Config load(Path file, Map<String, Object> env) {
            return ConfigFactory.parseFile(file.toFile()).withFallback(ConfigFactory.load()).withFallback(ConfigFactory.parseMap(env)).resolve();
        }
    }
}
