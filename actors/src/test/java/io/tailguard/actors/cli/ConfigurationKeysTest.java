package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.tailguard.actors.runtime.DeploymentFilesTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import static io.tailguard.actors.cli.CliBadInputTest.assertBadInput;
import static io.tailguard.actors.cli.CliBadInputTest.cli;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a user may write in a configuration: a key no reference.conf defines, in a file or a --set
 * pair, and a malformed pair, are bad input naming the key and its source before anything runs;
 * every configuration the repository ships is accepted. Every `train` and `node` here names a
 * checkpoint that does not exist, so one that got past validation would fail on it instead.
 */
class ConfigurationKeysTest {
    @TempDir
    Path tmp;

    private String missing() {
        return tmp.resolve("no-such-checkpoint").toString();
    }

    private Path file(String name, String hocon) throws IOException {
        Path p = tmp.resolve(name);
        Files.writeString(p, hocon);
        return p;
    }

    @Test
    void aMisspeltSectionFromSetIsRefused() {
        CliBadInputTest.Run r = cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.trian.steps=1");
        assertBadInput(r, "--set tailguard.trian.steps=1", "tailguard.trian.steps: unknown key", "known under tailguard:", "train");
        assertFalse(r.err().contains("no-such-checkpoint"), r.err());
    }

    @Test
    void aMisspeltKeyInAKnownSectionFromSetNamesThePair() {
        assertBadInput(cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.train.stpes=3"),
                "--set tailguard.train.stpes=3", "tailguard.train.stpes: unknown key", "known under tailguard.train:", "steps");
    }

    @Test
    void anUnknownTopLevelSectionFromSetIsRefused() throws IOException {
        Path conf = file("node.conf", "tailguard.train.checkpoint = \"" + missing() + "\"\n");
        assertBadInput(cli("node", "--config", conf.toString(), "--roles", "rollout", "--set", "nonexistent.key=1"),
                "--set nonexistent.key=1", "nonexistent.key: unknown key", "known top-level sections:", "tailguard", "pekko");
    }

    @Test
    void anUnknownKeyInAConfigFileNamesTheFileAndLine() throws IOException {
        Path conf = file("typo.conf", "tailguard.train {\n  steps = 3\n}\ntailguard.controller.tua = 0.9\n");
        CliBadInputTest.Run r = cli("train", "--config", conf.toString(), "--set", "tailguard.train.checkpoint=" + missing());
        assertBadInput(r, conf + ", line 4: tailguard.controller.tua: unknown key", "tau");
        Path node = file("node-typo.conf", "tailgaurd {\n  train.steps = 3\n}\n");
        assertBadInput(cli("node", "--config", node.toString(), "--roles", "rollout", "--set", "tailguard.train.checkpoint=" + missing()),
                node + ", line 1: tailgaurd.train.steps: unknown key (known top-level sections:");
    }

    @Test
    void anUnknownKeyInAnIncludedFileNamesThatFile() throws IOException {
        Path inner = file("inner.conf", "tailguard.rollout.wrokers = 2\n");
        Path outer = file("outer.conf", "include \"inner.conf\"\ntailguard.train.steps = 3\n");
        BadInput e = assertThrows(BadInput.class, () -> RunConfig.load(outer, List.of()));
        assertTrue(e.getMessage().startsWith(inner + ", line 1: tailguard.rollout.wrokers: unknown key"), e.getMessage());
    }

    @Test
    void theTailguardConfigFileIsCheckedToo() throws IOException {
        Path conf = file("env.conf", "tailguard.model.devcie = \"cpu\"\n");
        System.setProperty("tailguard.config", conf.toString());
        try {
            BadInput e = assertThrows(BadInput.class, Configuration::load);
            assertTrue(e.getMessage().startsWith(conf + ", line 1: tailguard.model.devcie: unknown key"), e.getMessage());
        } finally {
            System.clearProperty("tailguard.config");
        }
    }

    @Test
    void pekkoKeysAndDispatcherKeysAndEveryModulesKeysAreAccepted() throws IOException {
        // pekko.* is Pekko's to read, even a key its reference.conf does not set; a dispatcher section
        // takes Pekko's dispatcher keys; tailguard.model is the model module's
        Path conf = file("ok.conf", "pekko.cluster.some-setting-of-a-later-pekko = on\n"
                + "tailguard.blocking-io.thread-pool-executor.core-pool-size-min = 1\n");
        Config c = RunConfig.load(conf, List.of("pekko.remote.artery.canonical.port=25521", "tailguard.model.device=cpu",
                "tailguard.controller.dense-layers=[0]", "tailguard.admin={port = 0}"));
        assertEquals(25521, c.getInt("pekko.remote.artery.canonical.port"));
        assertTrue(c.getBoolean("pekko.cluster.some-setting-of-a-later-pekko"));
        assertEquals(1, c.getInt("tailguard.blocking-io.thread-pool-executor.core-pool-size-min"));
        assertEquals(List.of(0), c.getIntList("tailguard.controller.dense-layers"));
        assertEquals(0, c.getInt("tailguard.admin.port"));
        assertEquals("127.0.0.1", c.getString("tailguard.admin.host"), "an object from --set merges with the rest");
    }

    @Test
    void everyConfigurationTheRepositoryShipsIsAccepted() throws IOException {
        Path root = DeploymentFilesTest.repoRoot();
        for (String f : List.of("config/quickstart.conf", "config/cluster.conf", "config/cluster-tls.conf")) {
            // checked as parsed, before resolution: cluster-tls.conf needs its stores' environment
            KnownKeys.check(ConfigFactory.parseFile(root.resolve(f).toFile()), f, true);
        }
        RunConfig.load(root.resolve("config/quickstart.conf"), List.of());
        RunConfig.load(root.resolve("config/cluster.conf"), List.of());
        // the ConfigMap's tailguard.conf: the indented block after "tailguard.conf: |"
        List<String> lines = Files.readAllLines(root.resolve("deploy/k8s/base/configmap.yaml"));
        int start = lines.indexOf("  tailguard.conf: |") + 1;
        assertTrue(start > 0, "configmap.yaml has data.tailguard.conf");
        String hocon = lines.subList(start, lines.size()).stream().takeWhile(l -> l.isBlank() || l.startsWith("    "))
                .map(l -> l.isBlank() ? "" : l.substring(4)).collect(Collectors.joining("\n"));
        assertTrue(hocon.contains("tailguard.cluster.bootstrap = kubernetes-api"), hocon);
        KnownKeys.check(ConfigFactory.parseString(hocon), "deploy/k8s/base/configmap.yaml", true);
    }

    @Test
    void aMalformedSetNamesSetAndThePair() {
        // a list that does not close, a substitution that does not resolve, no "="
        assertBadInput(cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.controller.dense-layers=[0, 1"),
                "--set tailguard.controller.dense-layers=[0, 1:");
        assertBadInput(cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.controller.dense-layers=[0, ${nope}]"),
                "--set tailguard.controller.dense-layers=[0, ${nope}]", "nope");
        assertBadInput(cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.train.steps"),
                "--set tailguard.train.steps: expected key=value");
        assertBadInput(cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.train.out={"),
                "--set tailguard.train.out={:");
    }

    @Test
    void aNonLoopbackAdminHostWithoutATokenFailsBeforeAnyWork() throws IOException {
        Path out = tmp.resolve("run");
        CliBadInputTest.Run r = cli("train", "--set", "tailguard.train.checkpoint=" + missing(), "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.host=0.0.0.0");
        assertBadInput(r, "tailguard.admin.token (or tailguard.admin.token-file): required when tailguard.admin.host (0.0.0.0) is not a loopback address",
                "tailguard.admin.port (9401)");
        assertFalse(r.err().contains("no-such-checkpoint"), r.err());
        assertFalse(Files.exists(out), "no run directory before validation passes");
        // a node that hosts the controller serves the endpoint; so the same rule
        Path conf = file("admin.conf", "tailguard.admin.host = \"0.0.0.0\"\ntailguard.train.checkpoint = \"" + missing() + "\"\n");
        assertBadInput(cli("node", "--config", conf.toString(), "--roles", "rollout,controller"),
                conf + ": tailguard.admin.token (or tailguard.admin.token-file): required when tailguard.admin.host (0.0.0.0)");
    }

    @Test
    void anUnknownRoleFailsBeforeAnyWork() throws IOException {
        Path conf = file("roles.conf", "tailguard.train.checkpoint = \"" + missing() + "\"\n");
        assertBadInput(cli("node", "--config", conf.toString(), "--roles", "controler"), "--roles: unknown role \"controler\"");
    }
}
