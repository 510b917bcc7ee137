package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import io.tailguard.actors.runtime.AdminToken;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;

/** Options and calls shared by `tune` and `status`: where the admin endpoint is, and its token. */
class AdminClient {
    @Option(names = "--admin", description = "Admin endpoint (default: http://<tailguard.admin.host>:<tailguard.admin.port>).")
    String admin;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "File whose first line is the admin token (default: tailguard.admin.token-file).")
    Path tokenFile;

    @Option(names = "--token", description = "Admin token; visible to every user of the machine (ps): prefer "
            + "$TAILGUARD_ADMIN_TOKEN or --token-file.")
    String token;

    record Response(int code, String body) {}

    /** --token, else --token-file, else $TAILGUARD_ADMIN_TOKEN, else as the node reads it (token-file, token). */
    String token() {
        if (token != null) {
            return token;
        }
        try {
            if (tokenFile != null) {
                return AdminToken.fromFile("--token-file", tokenFile);
            }
            String env = System.getenv("TAILGUARD_ADMIN_TOKEN");
            return env != null && !env.isBlank() ? env.strip() : AdminToken.of(Configuration.load());
        } catch (IllegalArgumentException e) {
            throw new BadInput(e.getMessage());
        }
    }

    Response call(String method, String path, String body) {
        Config c = Configuration.load();
        String base = admin != null ? admin
                : "http://" + c.getString("tailguard.admin.host") + ":" + c.getInt("tailguard.admin.port");
        String t = token();
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(20));
        if (!t.isBlank()) {
            b.header("Authorization", "Bearer " + t);
        }
        if (body != null) {
            b.header("Content-Type", "application/json");  // the endpoint takes changes only as JSON
        }
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Response(r.statusCode(), r.body().strip());
        } catch (IOException e) {
            throw new BadInput("--admin " + base + ": no running Tailguard controller answers there (" + e.getMessage() + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (IllegalArgumentException e) {
            throw new BadInput("--admin " + base + ": " + e.getMessage());
        }
    }
}
