package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** Options and calls shared by `tune` and `status`: where the admin endpoint is, and its token. */
class AdminClient {
    @Option(names = "--admin", description = "Admin endpoint (default: http://<tailguard.admin.host>:<tailguard.admin.port>).")
    String admin;

    @Option(names = "--token", description = "Admin token (default: tailguard.admin.token, or $TAILGUARD_ADMIN_TOKEN).")
    String token;

    record Response(int code, String body) {}

    Response call(String method, String path, String body) {
        Config c = Configuration.load();
        String base = admin != null ? admin
                : "http://" + c.getString("tailguard.admin.host") + ":" + c.getInt("tailguard.admin.port");
        String t = token != null ? token : System.getenv().getOrDefault("TAILGUARD_ADMIN_TOKEN", c.getString("tailguard.admin.token"));
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(20));
        if (!t.isBlank()) {
            b.header("Authorization", "Bearer " + t);
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
