package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.cli.CliBadInputTest;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The admin endpoint's guards, against a stand-in controller that records every tune it is asked
 * for: what a web page of another site can send never reaches it.
 */
class AdminServerTest {
    static ActorTestKit kit;
    /** Every tune the stand-in controller received, as key=value. */
    static final ConcurrentLinkedQueue<Map<String, String>> tunes = new ConcurrentLinkedQueue<>();
    static ActorRef<Controller.Command> controller;

    @BeforeAll
    static void start() {
        kit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local\npekko.remote.artery.enabled = off")
                .withFallback(ConfigFactory.load()));
        controller = kit.spawn(Behaviors.receiveMessage(m -> {
            if (m instanceof Controller.Tune t) {
                Map<String, String> kv = new LinkedHashMap<>();
                for (int i = 0; i < t.keys().length; i++) {
                    kv.put(t.keys()[i], t.values()[i]);
                }
                tunes.add(kv);
                t.replyTo().tell(new Controller.TuneResult(true, "applied " + kv, 2, 1, true));
            }
            return Behaviors.same();
        }));
    }

    @AfterAll
    static void stop() {
        kit.shutdownTestKit();
    }

    @BeforeEach
    void clear() {
        tunes.clear();
    }

    private static AdminServer server(String token) {
        return new AdminServer(kit.system(), controller, "127.0.0.1", 0, token);
    }

    /** One request as a browser (or anyone) may write it; answers the status code and the body. */
    record Answer(int code, String body) {}

    static Answer raw(int port, String method, Map<String, String> headers, byte[] body) throws IOException {
        StringBuilder head = new StringBuilder(method + " /tune HTTP/1.1\r\n");
        if (!headers.containsKey("Host")) {
            head.append("Host: 127.0.0.1:").append(port).append("\r\n");
        }
        headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
        if (!headers.containsKey("Content-Length") && !headers.containsKey("Transfer-Encoding")) {
            head.append("Content-Length: ").append(body.length).append("\r\n");
        }
        head.append("Connection: close\r\n\r\n");
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(30_000);
            OutputStream o = s.getOutputStream();
            o.write(head.toString().getBytes(StandardCharsets.US_ASCII));
            o.write(body);
            o.flush();
            // the answer by its Content-Length, not to the end of the stream: a refused body may still be unsent
            InputStream in = s.getInputStream();
            ByteArrayOutputStream head2 = new ByteArrayOutputStream();
            while (!head2.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
                int b = in.read();
                if (b < 0) {
                    throw new IOException("connection closed in the answer's headers: " + head2);
                }
                head2.write(b);
            }
            String text = head2.toString(StandardCharsets.US_ASCII);
            int code = Integer.parseInt(text.substring(text.indexOf(' ') + 1, text.indexOf(' ') + 4));
            int length = 0;
            for (String line : text.split("\r\n")) {
                if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(line.indexOf(':') + 1).strip());
                }
            }
            return new Answer(code, new String(in.readNBytes(length), StandardCharsets.UTF_8));
        }
    }

    static Answer postJson(int port, Map<String, String> extra, String json) throws IOException {
        Map<String, String> h = new LinkedHashMap<>();
        h.put("Content-Type", "application/json");
        h.putAll(extra);
        return raw(port, "POST", h, json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aFormPostedFromAnotherSiteIsRefusedAndNeverReachesTheController() throws IOException {
        try (AdminServer s = server("")) {
            byte[] form = "tau=0.9&lr=1".getBytes(StandardCharsets.US_ASCII);
            // what <form method=post action=http://127.0.0.1:9401/tune> on another site sends
            Answer crossSite = raw(s.port(), "POST", Map.of("Content-Type", "application/x-www-form-urlencoded",
                    "Origin", "http://evil.example"), form);
            assertEquals(403, crossSite.code(), crossSite.body());
            // the same without an Origin (older browsers, a privacy extension): not JSON, so still refused
            Answer noOrigin = raw(s.port(), "POST", Map.of("Content-Type", "application/x-www-form-urlencoded"), form);
            assertEquals(415, noOrigin.code(), noOrigin.body());
            assertTrue(noOrigin.body().contains("application/json"), noOrigin.body());
            Answer textPlain = raw(s.port(), "POST", Map.of("Content-Type", "text/plain"), "tau=0.9".getBytes(StandardCharsets.US_ASCII));
            assertEquals(415, textPlain.code(), textPlain.body());
            assertEquals(415, raw(s.port(), "POST", Map.of(), form).code(), "no Content-Type at all");
            assertEquals(List.of(), new ArrayList<>(tunes));
        }
    }

    @Test
    void jsonFromAForeignOriginIsRefusedAndFromTheSameOriginApplied() throws IOException {
        try (AdminServer s = server("")) {
            Answer foreign = postJson(s.port(), Map.of("Origin", "http://evil.example:" + s.port()), "{\"tau\": \"0.9\"}");
            assertEquals(403, foreign.code(), foreign.body());
            Answer otherPort = postJson(s.port(), Map.of("Origin", "http://127.0.0.1:8080"), "{\"tau\": \"0.9\"}");
            assertEquals(403, otherPort.code(), otherPort.body());
            Answer sandboxed = postJson(s.port(), Map.of("Origin", "null"), "{\"tau\": \"0.9\"}");
            assertEquals(403, sandboxed.code(), sandboxed.body());
            assertEquals(List.of(), new ArrayList<>(tunes));

            Answer same = postJson(s.port(), Map.of("Origin", "http://127.0.0.1:" + s.port()), "{\"tau\": \"0.9\", \"lr\": 5e-5}");
            assertEquals(200, same.code(), same.body());
            Answer noOrigin = postJson(s.port(), Map.of(), "{\"staleness\": 1, \"distill\": true}");
            assertEquals(200, noOrigin.code(), noOrigin.body());
            // numbers keep their text: 5e-5 is validated as written
            assertEquals(List.of(Map.of("tau", "0.9", "lr", "5e-5"), Map.of("staleness", "1", "distill", "true")),
                    new ArrayList<>(tunes));
        }
    }

    @Test
    void aHostThatIsNotThisMachineIsRefused() throws IOException {
        try (AdminServer s = server("")) {
            // DNS rebinding: evil.example now resolves to 127.0.0.1, and its page talks to "its own" site
            Answer rebound = postJson(s.port(), Map.of("Host", "evil.example:" + s.port(),
                    "Origin", "http://evil.example:" + s.port()), "{\"tau\": \"0.9\"}");
            assertEquals(403, rebound.code(), rebound.body());
            assertEquals(403, postJson(s.port(), Map.of("Host", "10.0.0.1:" + s.port()), "{\"tau\": \"0.9\"}").code());
            assertEquals(List.of(), new ArrayList<>(tunes));
            assertEquals(200, postJson(s.port(), Map.of("Host", "localhost:" + s.port()), "{\"tau\": \"0.9\"}").code());
            assertEquals(200, postJson(s.port(), Map.of("Host", "[::1]:" + s.port()), "{\"tau\": \"0.8\"}").code());
            assertEquals(2, tunes.size());
        }
    }

    @Test
    void aBodyOverTheLimitIsRefusedWithoutReadingIt() throws IOException {
        try (AdminServer s = server("")) {
            // announced: refused on the header alone (the body is never sent; reading it would wait forever)
            Answer announced = raw(s.port(), "POST", Map.of("Content-Type", "application/json",
                    "Content-Length", Integer.toString(AdminServer.MAX_BODY + 1)), new byte[0]);
            assertEquals(413, announced.code(), announced.body());
            // not announced (chunked): refused once one byte more than the limit has arrived
            byte[] big = new byte[AdminServer.MAX_BODY + 256];
            java.util.Arrays.fill(big, (byte) ' ');
            ByteArrayOutputStream chunked = new ByteArrayOutputStream();
            chunked.writeBytes((Integer.toHexString(big.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
            chunked.writeBytes(big);
            chunked.writeBytes("\r\n0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            Answer streamed = raw(s.port(), "POST", Map.of("Content-Type", "application/json", "Transfer-Encoding", "chunked"),
                    chunked.toByteArray());
            assertEquals(413, streamed.code(), streamed.body());
            assertEquals(List.of(), new ArrayList<>(tunes));
            // exactly the limit is read
            String json = "{\"tau\": \"0.9\"}";
            String atLimit = json + " ".repeat(AdminServer.MAX_BODY - json.length());
            assertEquals(200, postJson(s.port(), Map.of(), atLimit).code());
            assertEquals(1, tunes.size());
        }
    }

    @Test
    void aBodyThatIsNotAFlatJsonObjectIsRefused() throws IOException {
        try (AdminServer s = server("")) {
            Answer lines = postJson(s.port(), Map.of(), "tau=0.9");
            assertEquals(400, lines.code(), lines.body());
            Answer array = postJson(s.port(), Map.of(), "[\"tau\"]");
            assertEquals(400, array.code(), array.body());
            Answer nested = postJson(s.port(), Map.of(), "{\"tau\": {\"value\": 0.9}}");
            assertEquals(400, nested.code(), nested.body());
            assertTrue(nested.body().contains("tau: expected a string, number or boolean"), nested.body());
            assertEquals(405, raw(s.port(), "GET", Map.of(), new byte[0]).code(), "GET /tune");
            assertEquals(List.of(), new ArrayList<>(tunes));
        }
    }

    /**
     * Clients that send half a request (half the headers; all the headers and half the body) and then
     * nothing lose their connection once the read timeout passes: four of them, as many as the
     * endpoint has threads, do not keep a whole request from being answered afterwards.
     */
    @Test
    void aClientThatSendsHalfARequestLosesItsConnection() throws Exception {
        try (AdminServer s = new AdminServer(kit.system(), controller, "127.0.0.1", 0, "", java.time.Duration.ofMillis(500))) {
            List<Socket> slow = new ArrayList<>();
            try {
                for (int i = 0; i < 4; i++) {
                    Socket c = new Socket("127.0.0.1", s.port());
                    c.setSoTimeout(60_000); // only a failing test waits this long
                    String half = i % 2 == 0 ? "GET /status HTTP/1.1\r\nHost: 127.0."
                            : "POST /tune HTTP/1.1\r\nHost: 127.0.0.1:" + s.port() + "\r\nContent-Type: application/json\r\n"
                            + "Content-Length: 40\r\n\r\n{\"tau\": ";
                    c.getOutputStream().write(half.getBytes(StandardCharsets.US_ASCII));
                    c.getOutputStream().flush();
                    slow.add(c);
                }
                for (Socket c : slow) {
                    // closed by the server: the end of the stream (or a reset), and no answer
                    int first;
                    try {
                        first = c.getInputStream().read();
                    } catch (java.net.SocketException reset) {
                        first = -1;
                    }
                    assertEquals(-1, first, "a slow client got an answer instead of losing its connection");
                }
            } finally {
                for (Socket c : slow) {
                    c.close();
                }
            }
            assertEquals(200, postJson(s.port(), Map.of(), "{\"tau\": \"0.9\"}").code());
            assertEquals(List.of(Map.of("tau", "0.9")), new ArrayList<>(tunes), "the half tune never reached the controller");
        }
    }

    /** `status` shows the controller's failed file writes and compression jobs: in all, in a row, the bound, the last error. */
    @Test
    void theStatusShowsFailedStateWritesAndCompressionJobs() {
        ControllerStatus st = new ControllerStatus(new ControllerStatus.Schedule(1, new int[] {64}, new double[] {Double.NaN}, 0.86, 1.0),
                new ControllerStatus.Run(-1, 0, 0, 0, 0, new String[0]), new LiveSettings(0, 2, 2e-4, false), new TuningBook.Tuned[0],
                new ControllerStatus.CompressedOption(false, -1, "", false, 0.25, 50, new double[0], 0, ""),
                new ControllerStatus.Failures(4, 2, 5, "cannot write /r/controller/state.json: Read-only file system"), PLAIN_ONLY,
                new ControllerStatus.Failures(1, 0, 3, "compressing policy v20 failed: java.lang.IllegalStateException: NaN in layer 3"));
        String json = new com.google.gson.Gson().toJson(AdminServer.statusJson(st));
        assertTrue(json.contains("\"state_writes\":{\"failures\":4,\"failures_in_a_row\":2,\"stop_at\":5,"
                + "\"last_error\":\"cannot write /r/controller/state.json: Read-only file system\"}"), json);
        assertTrue(json.contains("\"compression_jobs\":{\"failures\":1,\"failures_in_a_row\":0,\"stop_at\":3,"
                + "\"last_error\":\"compressing policy v20 failed: java.lang.IllegalStateException: NaN in layer 3\"}"), json);
    }

    static final ControllerStatus.Approximation PLAIN_ONLY = new ControllerStatus.Approximation("plain", Double.NaN,
            "no compressed version yet", new ControllerStatus.Option[] {new ControllerStatus.Option("plain", "plain", -1, true, 1,
            new int[] {64}, new double[] {Double.NaN}, 1e6, 1.0, Double.NaN, "in use")});

    /** `status` shows the option in use (format and schedule), its measured speed against the plain policy's, and every option. */
    @Test
    void theStatusShowsTheChosenCombination() {
        ControllerStatus.Approximation a = new ControllerStatus.Approximation("yaqa_b4", 1.6123, "yaqa_b4 v10 in use",
                new ControllerStatus.Option[] {
                        new ControllerStatus.Option("plain", "plain", -1, false, 3, new int[] {64, 128}, new double[] {0.93, Double.NaN},
                                2e6, 1.5, 100.0, "probed: meets τ + hysteresis"),
                        new ControllerStatus.Option("yaqa_b4", "yaqa_b4 (4-bit, group 32)", 10, true, 4, new int[] {48, 96},
                                new double[] {0.91, 0.9}, 1e6, 3.0, 161.23, "in use")});
        ControllerStatus st = new ControllerStatus(new ControllerStatus.Schedule(3, new int[] {64, 128}, new double[] {0.93, Double.NaN}, 0.86, 1.5),
                new ControllerStatus.Run(10, 0, 0, 0, 0, new String[0]), new LiveSettings(0, 2, 2e-4, false), new TuningBook.Tuned[0],
                new ControllerStatus.CompressedOption(true, 10, "v10 yaqa_b 4-bit", true, 0.25, 50, new double[] {0.91, 0.9}, 0.7, ""),
                new ControllerStatus.Failures(0, 0, 5, null), a, new ControllerStatus.Failures(0, 0, 3, null));
        String json = new com.google.gson.Gson().toJson(AdminServer.statusJson(st));
        assertTrue(json.contains("\"approximation\":{\"in_use\":\"yaqa_b4\",\"measured_speedup_vs_plain\":1.612,"), json);
        assertTrue(json.contains("{\"format\":\"yaqa_b4\",\"describe\":\"yaqa_b4 (4-bit, group 32)\",\"version\":10,\"in_use\":true,"
                + "\"schedule_version\":4,\"budgets\":[48,96],\"alpha_p5\":[0.91,0.9],\"predicted_cost\":1000000.0,\"predicted_speedup\":3.0,"
                + "\"tokens_per_s\":161.2,\"state\":\"in use\"}"), json);
        assertTrue(json.contains("\"alpha_p5\":[0.93,null]"), json);
    }

    @Test
    void theClientSendsJsonAndItsTokenFromAFile(@TempDir Path tmp) throws IOException {
        Path tokenFile = tmp.resolve("admin-token");
        Files.writeString(tokenFile, "s3cret-token\n");
        try (AdminServer s = server("s3cret-token")) {
            String url = "http://127.0.0.1:" + s.port();
            Answer none = postJson(s.port(), Map.of(), "{\"tau\": \"0.9\"}");
            assertEquals(401, none.code(), none.body());
            CliBadInputTest.Run noToken = CliBadInputTest.cli("tune", "--admin", url, "tau=0.9");
            assertEquals(2, noToken.code(), noToken.out() + noToken.err());
            assertTrue(noToken.err().contains("wants a token"), noToken.err());
            assertEquals(List.of(), new ArrayList<>(tunes));

            CliBadInputTest.Run ok = CliBadInputTest.cli("tune", "--admin", url, "--token-file", tokenFile.toString(),
                    "--json", "tau=0.9", "lr=5e-5");
            assertEquals(0, ok.code(), ok.out() + ok.err());
            assertEquals(List.of(Map.of("tau", "0.9", "lr", "5e-5")), new ArrayList<>(tunes));

            CliBadInputTest.Run missing = CliBadInputTest.cli("tune", "--admin", url, "--token-file",
                    tmp.resolve("nope").toString(), "tau=0.9");
            assertEquals(2, missing.code(), missing.out() + missing.err());
            assertTrue(missing.err().contains("--token-file: " + tmp.resolve("nope") + ": no such file"), missing.err());
        }
    }

    @Test
    void theNodeReadsItsTokenFromTheFileOrTheEnvironment(@TempDir Path tmp) throws IOException {
        Path tokenFile = tmp.resolve("admin-token");
        Files.writeString(tokenFile, "  from-the-file  \nsecond line ignored\n");
        Config base = ConfigFactory.parseString("tailguard.admin.token-file = \"" + tokenFile + "\"")
                .withFallback(ConfigFactory.load());
        assertEquals("from-the-file", RunSettings.parse(base, "test").admin().token());
        assertEquals("from-the-file", AdminToken.of(base.withFallback(ConfigFactory.parseString("tailguard.admin.token = other"))));
        // reference.conf takes the token from $TAILGUARD_ADMIN_TOKEN (here a stand-in for the environment)
        Config env = ConfigFactory.parseResources("reference.conf")
                .withFallback(ConfigFactory.parseMap(Map.of("TAILGUARD_ADMIN_TOKEN", "from-env"))).resolve();
        assertEquals("from-env", AdminToken.of(env));
        assertEquals("", AdminToken.of(ConfigFactory.parseResources("reference.conf").resolve()
                .withValue("tailguard.admin.token", ConfigFactory.parseString("a = \"\"").getValue("a"))));

        Files.writeString(tokenFile, "\n\n");
        IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> AdminToken.of(base));
        assertEquals("tailguard.admin.token-file: " + tokenFile + ": empty (expected the token on its first line)", empty.getMessage());
        Config missing = ConfigFactory.parseString("tailguard.admin.token-file = \"" + tmp.resolve("nope") + "\"")
                .withFallback(ConfigFactory.load());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RunSettings.parse(missing, "run.conf"));
        assertTrue(e.getMessage().contains("tailguard.admin.token-file: " + tmp.resolve("nope") + ": no such file"), e.getMessage());
    }
}
