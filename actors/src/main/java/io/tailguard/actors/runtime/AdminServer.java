package io.tailguard.actors.runtime;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The admin endpoint of the node that hosts the controller: {@code POST /tune} with a JSON object
 * of settings ({@code {"tau": "0.9"}}) applies a live change through the controller and answers its
 * outcome as JSON (400 when refused, 500 when applied but not persisted: the state file could not be
 * written); {@code GET /status} answers the controller's status. Bound to localhost by default;
 * bound elsewhere it refuses to start without a token, and then every request needs
 * {@code Authorization: Bearer <token>}.
 *
 * <p>A web page the operator has open may send requests here too (to localhost, or to a name it
 * rebinds to it), so: a change needs {@code Content-Type: application/json}, which a page of
 * another site cannot send without the browser asking first (415 otherwise); a request whose
 * {@code Origin} is not the {@code Host} it was sent to is refused (403), and so, on a loopback
 * address, is one whose {@code Host} is not a local name (403); a body over {@value #MAX_BODY}
 * bytes is refused unread (413). A client that has not sent its whole request within
 * {@link #READ_TIMEOUT} loses its connection ({@link ReadDeadline}).
 */
public final class AdminServer implements AutoCloseable {
    private static final Gson GSON = new Gson();
    /** A tune is a handful of keys; a larger body is not one. */
    static final int MAX_BODY = 64 * 1024;
    /** How long a client may take to send its request (line, headers, body): a tune is a few hundred bytes. */
    static final Duration READ_TIMEOUT = Duration.ofSeconds(10);
    private final HttpServer server;
    private final ReadDeadline deadline;

    public AdminServer(ActorSystem<?> system, ActorRef<Controller.Command> controller, String host, int port, String token) {
        this(system, controller, host, port, token, READ_TIMEOUT);
    }

    AdminServer(ActorSystem<?> system, ActorRef<Controller.Command> controller, String host, int port, String token,
                Duration readTimeout) {
        boolean loopback;
        try {
            loopback = InetAddress.getByName(host).isLoopbackAddress();
        } catch (IOException e) {
            throw new IllegalArgumentException("tailguard.admin.host: cannot resolve \"" + host + "\"");
        }
        if (!loopback && (token == null || token.isBlank())) {
            throw new IllegalArgumentException("tailguard.admin.token: required (or tailguard.admin.token-file) when "
                    + "tailguard.admin.host (" + host + ") is not a loopback address");
        }
        Guard guard = new Guard(host, loopback, token);
        try {
            server = HttpServer.create(new InetSocketAddress(host, port), 16);
        } catch (IOException e) {
            throw new UncheckedIOException("admin: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        // a few threads: one slow client does not hold up the others while its deadline runs
        deadline = new ReadDeadline(readTimeout, 4, "tailguard-admin");
        server.setExecutor(deadline.executor());
        server.createContext("/tune", ex -> handle(ex, guard, "POST", deadline, () -> {
            Map<String, String> kv = parse(readBody(ex));
            deadline.received();
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
        server.createContext("/status", ex -> handle(ex, guard, "GET", deadline, () -> reply(200, statusJson(
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
        m.put("approximation", approximationJson(s.approximation()));
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
        m.put("state_writes", failuresJson(s.stateWrites()));
        m.put("compression_jobs", failuresJson(s.compressionJobs()));
        return m;
    }

    private static Map<String, Object> failuresJson(ControllerStatus.Failures w) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("failures", w.failures());
        m.put("failures_in_a_row", w.failuresInARow());
        m.put("stop_at", w.stopAt());
        m.put("last_error", w.lastError() == null ? "" : w.lastError());
        return m;
    }

    /**
     * The approximation budget: the option in use (the chosen combination of format and schedule),
     * its measured speed against the plain policy's, why, and every option.
     */
    private static Map<String, Object> approximationJson(ControllerStatus.Approximation a) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("in_use", a.inUse());
        m.put("measured_speedup_vs_plain", nullForNaN(round3(a.measuredSpeedupVsPlain())));
        m.put("reason", a.reason());
        List<Object> options = new ArrayList<>();
        for (ControllerStatus.Option o : a.options()) {
            Map<String, Object> x = new LinkedHashMap<>();
            x.put("format", o.label());
            x.put("describe", o.format());
            x.put("version", o.version());
            x.put("in_use", o.inUse());
            x.put("schedule_version", o.scheduleVersion());
            x.put("budgets", o.budgets());
            x.put("alpha_p5", nullForNaN(o.alphaP5()));
            x.put("predicted_cost", o.predictedCost());
            x.put("predicted_speedup", nullForNaN(round3(o.predictedSpeedup())));
            x.put("tokens_per_s", nullForNaN(Double.isNaN(o.tokensPerSecond()) ? Double.NaN : Math.round(o.tokensPerSecond() * 10) / 10.0));
            x.put("sequence_alpha", nullForNaN(round3(o.sequenceAlpha())));
            x.put("state", o.state());
            options.add(x);
        }
        m.put("options", options);
        return m;
    }

    private static double round3(double x) {
        return Double.isNaN(x) || Double.isInfinite(x) ? Double.NaN : Math.round(x * 1000) / 1000.0;
    }

    private static Object nullForNaN(double x) {
        return Double.isNaN(x) || Double.isInfinite(x) ? null : x;
    }

    private static List<Object> nullForNaN(double[] xs) {
        List<Object> out = new ArrayList<>();
        for (double a : xs) {
            out.add(Double.isNaN(a) ? null : a);
        }
        return out;
    }

    /**
     * The settings of a tune: a JSON object whose values are strings, numbers or booleans (each as
     * its text: {@code 5e-5} stays {@code 5e-5}).
     */
    static Map<String, String> parse(String body) {
        JsonElement root;
        try {
            root = JsonParser.parseString(body);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("body: not JSON (expected an object such as {\"tau\": \"0.9\"}): " + e.getMessage());
        }
        if (!root.isJsonObject()) {
            throw new IllegalArgumentException("body: expected a JSON object such as {\"tau\": \"0.9\"}, got " + root);
        }
        Map<String, String> kv = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : root.getAsJsonObject().entrySet()) {
            if (!e.getValue().isJsonPrimitive()) {
                throw new IllegalArgumentException(e.getKey() + ": expected a string, number or boolean, got " + e.getValue());
            }
            kv.put(e.getKey().strip(), e.getValue().getAsString().strip());
        }
        return kv;
    }

    /** The body, read only up to {@link #MAX_BODY} bytes: a larger one (announced or sent) is refused. */
    private static String readBody(HttpExchange ex) throws IOException {
        String length = ex.getRequestHeaders().getFirst("Content-Length");
        if (length != null) {
            try {
                if (Long.parseLong(length.strip()) > MAX_BODY) {
                    throw new Refused(413, "body: larger than " + MAX_BODY + " bytes");
                }
            } catch (NumberFormatException e) {
                throw new Refused(400, "Content-Length: not a number");
            }
        }
        byte[] b = ex.getRequestBody().readNBytes(MAX_BODY + 1);
        if (b.length > MAX_BODY) {
            throw new Refused(413, "body: larger than " + MAX_BODY + " bytes");
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    /** A request refused before it reaches the controller, with its status code. */
    private static final class Refused extends RuntimeException {
        final int code;

        Refused(int code, String message) {
            super(message, null, false, false);
            this.code = code;
        }
    }

    /**
     * What every request must pass before its handler runs: the method, the token, and the
     * cross-site checks of the class comment.
     */
    private record Guard(String host, boolean loopback, String token) {
        void check(HttpExchange ex, String method) {
            var h = ex.getRequestHeaders();
            if (!ex.getRequestMethod().equals(method)) {
                throw new Refused(405, method + " " + ex.getRequestURI().getPath());
            }
            String requestHost = h.getFirst("Host");
            if (loopback && (requestHost == null || !localName(hostPart(requestHost)))) {
                throw new Refused(403, "Host " + requestHost + ": not this machine's name (" + host + ", localhost)");
            }
            String origin = h.getFirst("Origin");
            if (origin != null && !sameHost(origin, requestHost)) {
                throw new Refused(403, "Origin " + origin + ": a request from another site");
            }
            if (token != null && !token.isBlank() && !authorized(h.getFirst("Authorization"), token)) {
                throw new Refused(401, "missing or wrong admin token");
            }
            if (method.equals("POST") && !json(h.getFirst("Content-Type"))) {
                throw new Refused(415, "Content-Type " + h.getFirst("Content-Type") + ": expected application/json");
            }
        }

        /** The configured host, or a name or address of this machine's loopback interface. */
        private boolean localName(String name) {
            String n = name.toLowerCase(Locale.ROOT);
            if (n.equals(host.toLowerCase(Locale.ROOT)) || n.equals("localhost") || n.endsWith(".localhost")) {
                return true;
            }
            // Only literal addresses: resolving a name here would ask the very DNS that rebinds it.
            if (n.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
                return n.startsWith("127.");
            }
            return n.equals("::1") || n.equals("0:0:0:0:0:0:0:1");
        }
    }

    /** The host of a Host header ({@code name:port}, {@code [v6]:port}), without brackets or port. */
    static String hostPart(String hostHeader) {
        String h = hostHeader.strip();
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            return end < 0 ? h : h.substring(1, end);
        }
        int colon = h.indexOf(':');
        return colon < 0 ? h : h.substring(0, colon);
    }

    /** Whether an Origin ({@code scheme://host[:port]}) names the host and port the request was sent to. */
    static boolean sameHost(String origin, String requestHost) {
        if (requestHost == null) {
            return false;
        }
        try {
            URI u = new URI(origin.strip());
            if (u.getRawAuthority() == null) {
                return false;  // "null" (a sandboxed page, a file): no site to match
            }
            return u.getRawAuthority().equalsIgnoreCase(requestHost.strip());
        } catch (URISyntaxException e) {
            return false;
        }
    }

    private static boolean json(String contentType) {
        if (contentType == null) {
            return false;
        }
        int semi = contentType.indexOf(';');
        String media = (semi < 0 ? contentType : contentType.substring(0, semi)).strip();
        return media.equalsIgnoreCase("application/json");
    }

    private record Reply(int code, Object body) {}

    private static Reply reply(int code, Object body) {
        return new Reply(code, body);
    }

    private interface Handler {
        Reply run() throws IOException;
    }

    private static void handle(HttpExchange ex, Guard guard, String method, ReadDeadline deadline, Handler h) throws IOException {
        Reply r;
        try {
            guard.check(ex, method);
            if (method.equals("GET")) {
                deadline.received(); // the request line and headers are in, and there is no body
            }
            r = h.run();
        } catch (Refused e) {
            r = reply(e.code, Map.of("error", e.getMessage()));
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
        deadline.close();
    }
}
