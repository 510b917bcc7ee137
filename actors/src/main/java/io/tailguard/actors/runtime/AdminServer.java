package io.tailguard.actors.runtime;

import com.google.gson.Gson;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;

/**
 * The admin endpoint of the node that hosts the controller: {@code POST /tune} with a body of
 * {@code key=value} lines (or {@code &}-separated) applies a live change through the controller and
 * answers its outcome as JSON (400 when refused, 500 when applied but not persisted: the state file
 * could not be written); {@code GET /status} answers the controller's
 * status. Bound to localhost by default; bound elsewhere it refuses to start without a token, and
 * then every request needs {@code Authorization: Bearer <token>}.
 */
public final class AdminServer implements AutoCloseable {
    private static final Gson GSON = new Gson();
    private final HttpServer server;

    public AdminServer(ActorSystem<?> system, ActorRef<Controller.Command> controller, String host, int port, String token) {
        boolean loopback;
        try {
            loopback = InetAddress.getByName(host).isLoopbackAddress();
        } catch (IOException e) {
            throw new IllegalArgumentException("tailguard.admin.host: cannot resolve \"" + host + "\"");
        }
        if (!loopback && (token == null || token.isBlank())) {
            throw new IllegalArgumentException("tailguard.admin.token: required when tailguard.admin.host (" + host
                    + ") is not a loopback address");
        }
        try {
            server = HttpServer.create(new InetSocketAddress(host, port), 16);
        } catch (IOException e) {
            throw new UncheckedIOException("admin: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        server.setExecutor(Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "tailguard-admin");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/tune", ex -> handle(ex, token, () -> {
            if (!ex.getRequestMethod().equals("POST")) {
                return reply(405, Map.of("error", "POST key=value lines to /tune"));
            }
            Map<String, String> kv = parse(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            Controller.TuneResult r = AskPattern.<Controller.Command, Controller.TuneResult>ask(controller,
                    reply -> new Controller.Tune(kv.keySet().toArray(String[]::new), kv.values().toArray(String[]::new), false, reply),
                    Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().join();
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("accepted", r.accepted());
            body.put("message", r.message());
            body.put("schedule_version", r.scheduleVersion());
            body.put("settings_version", r.settingsVersion());
            if (r.accepted()) {
                body.put("persisted", r.persisted());
            }
            // applied but not in the state file: running, but lost if the controller restarts (`tune` exits 1)
            return reply(!r.accepted() ? 400 : r.persisted() ? 200 : 500, body);
        }));
        server.createContext("/status", ex -> handle(ex, token, () -> reply(200, statusJson(
                AskPattern.<Controller.Command, ControllerStatus>ask(controller, Controller.GetStatus::new, Duration.ofSeconds(10),
                        system.scheduler()).toCompletableFuture().join()))));
        server.start();
    }

    public int port() {
        return server.getAddress().getPort();
    }

    /** The status as JSON, with the keys `status --json` has always printed. */
    static Map<String, Object> statusJson(ControllerStatus s) {
        ControllerStatus.Schedule sched = s.schedule();
        ControllerStatus.Run run = s.run();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("schedule_version", sched.version());
        m.put("budgets", sched.budgets());
        m.put("alpha_p5", nullForNaN(sched.alphaP5()));
        m.put("tau", sched.tau());
        m.put("policy_version", run.policyVersion());
        m.put("leases_open", run.leasesOpen());
        m.put("groups_issued", run.groupsIssued());
        m.put("buffer_groups", run.bufferGroups());
        m.put("rollout_tokens_per_s", Math.round(run.rolloutTokensPerSecond() * 10) / 10.0);
        m.put("predicted_speedup", Math.round(sched.predictedSpeedup() * 1000) / 1000.0);
        m.put("members", run.members());
        m.put("settings_version", s.live().version());
        m.put("staleness", s.live().staleness());
        m.put("lr", s.live().lr());
        m.put("distill", s.live().distill() ? "on" : "off");
        Map<String, Object> tuned = new LinkedHashMap<>();
        for (TuningBook.Tuned t : s.tuned()) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("value", t.value());
            v.put("configured", t.configured());
            tuned.put(t.key(), v);
        }
        m.put("tuned", tuned);
        ControllerStatus.CompressedOption c = s.compressed();
        m.put("rollout_option", c.inUse() ? "compressed " + c.describe() : "plain");
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("rollout", c.on() ? "on" : "off");
        o.put("version", c.version());
        o.put("artifact", c.describe());
        o.put("in_use", c.inUse());
        o.put("probe_share", c.probeShare());
        o.put("max_lag", c.maxLag());
        o.put("alpha_p5", nullForNaN(c.alphaP5()));
        o.put("token_share", Math.round(c.tokenShare() * 1000) / 1000.0);
        o.put("reason", c.reason());
        m.put("compressed_rollout", o);
        return m;
    }

    private static List<Object> nullForNaN(double[] xs) {
        List<Object> out = new ArrayList<>();
        for (double a : xs) {
            out.add(Double.isNaN(a) ? null : a);
        }
        return out;
    }

    /** key=value pairs, one per line or &-separated (URL-decoded). */
    static Map<String, String> parse(String body) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String part : body.split("[\\n&]")) {
            String p = URLDecoder.decode(part.strip(), StandardCharsets.UTF_8);
            if (p.isEmpty()) {
                continue;
            }
            int eq = p.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("\"" + p + "\": expected key=value");
            }
            kv.put(p.substring(0, eq).strip(), p.substring(eq + 1).strip());
        }
        return kv;
    }

    private record Reply(int code, Object body) {}

    private static Reply reply(int code, Object body) {
        return new Reply(code, body);
    }

    private interface Handler {
        Reply run() throws IOException;
    }

    private static void handle(HttpExchange ex, String token, Handler h) throws IOException {
        Reply r;
        try {
            if (token != null && !token.isBlank() && !authorized(ex.getRequestHeaders().getFirst("Authorization"), token)) {
                r = reply(401, Map.of("error", "missing or wrong admin token"));
            } else {
                r = h.run();
            }
        } catch (IllegalArgumentException e) {
            r = reply(400, Map.of("accepted", false, "message", e.getMessage()));
        } catch (RuntimeException e) {
            r = reply(503, Map.of("error", "controller did not answer: " + e.getMessage()));
        }
        byte[] b = (GSON.toJson(r.body()) + "\n").getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(r.code(), b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    private static boolean authorized(String header, String token) {
        if (header == null || !header.startsWith("Bearer ")) {
            return false;
        }
        return MessageDigest.isEqual(header.substring(7).strip().getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
