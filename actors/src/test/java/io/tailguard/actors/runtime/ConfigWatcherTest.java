package io.tailguard.actors.runtime;

import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The watched configuration file: an edit that names a key no reference.conf defines is refused as
 * a whole (logged with the key, the file and its line; nothing applied, the running values kept),
 * as it would be at start; the next edit without it applies.
 */
class ConfigWatcherTest {
    @Test
    void anEditWithAnUnknownKeyIsRefusedAndTheRunningValuesStay(@TempDir Path tmp) throws Exception {
        ActorTestKit kit = ActorTestKit.create(ConfigFactory.parseString("pekko.actor.provider = local\npekko.remote.artery.enabled = off")
                .withFallback(ConfigFactory.load()));
        Path file = tmp.resolve("run.conf");
        Files.writeString(file, "tailguard.controller.tau = 0.86\n");
        String typo = "tailguard.controller.tau = 0.9\ntailguard.controller.tua = 0.9\n";
        Path typoFile = tmp.resolve("typo.conf");
        Files.writeString(typoFile, typo);
        String refusal = ConfigWatcher.unknownKey(ConfigFactory.parseFile(typoFile.toFile()), typoFile);
        assertTrue(refusal != null && refusal.startsWith(typoFile + " changed, refused: " + typoFile + ", line 2: "
                + "tailguard.controller.tua: unknown key (known under tailguard.controller: ") && refusal.endsWith("the running values stay"), refusal);
        assertNull(ConfigWatcher.unknownKey(ConfigFactory.parseString("tailguard.controller.tau = 0.9\npekko.loglevel = DEBUG"), typoFile));
        TestProbe<Controller.Command> controller = kit.createTestProbe();
        try (ConfigWatcher w = new ConfigWatcher(file, kit.system(), controller.ref(), false)) {
            // a good change beside a misspelt key: nothing goes to the controller
            Files.writeString(file, typo);
            LiveTuningTest.bump(file);
            w.poll();
            controller.expectNoMessage(Duration.ofMillis(300));
            // without the typo, the change goes to the controller (tau only), and applies
            Files.writeString(file, "tailguard.controller.tau = 0.9\n");
            LiveTuningTest.bump(file);
            CompletableFuture<Void> polled = CompletableFuture.runAsync(w::poll);
            Controller.Tune t = controller.expectMessageClass(Controller.Tune.class, Duration.ofSeconds(30));
            assertEquals(List.of("tailguard.controller.tau"), List.of(t.keys()));
            assertEquals(List.of("0.9"), List.of(t.values()));
            assertTrue(t.fromFile());
            t.replyTo().tell(new Controller.TuneResult(true, "tau 0.86 -> 0.9", 1, 1, true));
            polled.get();
        } finally {
            kit.shutdownTestKit();
        }
    }
}
