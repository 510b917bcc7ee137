package io.tailguard.actors.integration;

import com.google.gson.Gson;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * The one call of the Kubernetes API that Pekko's Kubernetes-API discovery makes, served over HTTPS
 * on loopback: {@code GET /api/v1/namespaces/NS/pods?labelSelector=k=v[,k=v]} with a bearer token.
 * Like the API server it answers 401 without the token, 403 for another namespace (a Role is
 * namespaced), and the pods whose labels match every term of an equality selector, as a PodList.
 * Every request is recorded for the test's assertions.
 */
final class FakeKubernetesApi implements AutoCloseable {
    record Request(String path, String labelSelector, String authorization, int status) {}

    private static final Gson GSON = new Gson();
    private final HttpsServer server;
    private final String namespace;
    private final String token;
    private final List<Map<String, Object>> pods = new CopyOnWriteArrayList<>();
    final List<Request> requests = new CopyOnWriteArrayList<>();

    /** keyStore: PKCS12 with the server's key and a certificate for 127.0.0.1. */
    FakeKubernetesApi(Path keyStore, String password, String namespace, String token) throws Exception {
        this.namespace = namespace;
        this.token = token;
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keyStore)) {
            ks.load(in, password.toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password.toCharArray());
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), null, null);
        server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.setHttpsConfigurator(new HttpsConfigurator(ssl));
        server.setExecutor(Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fake-kubernetes-api");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", this::handle);
        server.start();
    }

    int port() {
        return server.getAddress().getPort();
    }

    /** A pod as the API lists it: the manifest's labels and container port names, this pod's ports, IP and phase. */
    void addPod(String name, Map<String, Object> labels, String container, Map<String, Integer> ports, String phase, String podIp) {
        List<Map<String, Object>> containerPorts = new ArrayList<>();
        ports.forEach((n, p) -> containerPorts.add(Map.of("name", n, "containerPort", p, "protocol", "TCP")));
        Map<String, Object> status = new LinkedHashMap<>();
        status.put("phase", phase);
        if (podIp != null) {
            status.put("podIP", podIp);
            status.put("containerStatuses", List.of(Map.of("name", container, "state", Map.of("running", Map.of()))));
        }
        pods.add(Map.of(
                "metadata", Map.of("name", name, "namespace", namespace, "labels", labels),
                "spec", Map.of("containers", List.of(Map.of("name", container, "ports", containerPorts))),
                "status", status));
    }

    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        String selector = null;
        String query = ex.getRequestURI().getRawQuery();
        if (query != null) {
            for (String kv : query.split("&")) {
                if (kv.startsWith("labelSelector=")) {
                    selector = URLDecoder.decode(kv.substring("labelSelector=".length()), StandardCharsets.UTF_8);
                }
            }
        }
        int status;
        Object body;
        if (!("Bearer " + token).equals(auth)) {
            status = 401;
            body = Map.of("kind", "Status", "reason", "Unauthorized");
        } else if (!path.matches("/api/v1/namespaces/[^/]+/pods")) {
            status = 404;
            body = Map.of("kind", "Status", "reason", "NotFound");
        } else if (!path.equals("/api/v1/namespaces/" + namespace + "/pods")) {
            status = 403;
            body = Map.of("kind", "Status", "reason", "Forbidden");
        } else {
            status = 200;
            List<Map<String, Object>> items = new ArrayList<>();
            for (Map<String, Object> pod : pods) {
                @SuppressWarnings("unchecked")
                Map<String, Object> labels = (Map<String, Object>) ((Map<String, Object>) pod.get("metadata")).get("labels");
                if (matches(selector, labels)) {
                    items.add(pod);
                }
            }
            body = Map.of("kind", "PodList", "apiVersion", "v1", "items", items);
        }
        requests.add(new Request(path, selector, auth, status));
        byte[] b = GSON.toJson(body).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    /** An equality-based selector (k=v, comma-separated), as the API server reads it; none selects all. */
    static boolean matches(String selector, Map<String, Object> labels) {
        if (selector == null || selector.isBlank()) {
            return true;
        }
        for (String term : selector.split(",")) {
            String[] kv = term.split("==?", 2);
            if (kv.length != 2 || !kv[1].strip().equals(String.valueOf(labels.get(kv[0].strip())))) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
