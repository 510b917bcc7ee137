package io.tailguard.model.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ManifestTest {

    @TempDir
    Path dir;

    @Test
    void sha256MatchesKnownDigests() throws IOException {
        Path f = dir.resolve("abc.txt");
        Files.writeString(f, "abc");
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Manifest.sha256(f));
        Files.write(f, new byte[0]);
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Manifest.sha256(f));
    }

    @Test
    void roundTripsThroughJsonWithNullParent() throws IOException {
        TreeMap<String, String> sums = new TreeMap<>();
        Files.writeString(dir.resolve("a.bin"), "hello");
        sums.put("a.bin", Manifest.sha256(dir.resolve("a.bin")));
        Manifest m = new Manifest(7, null, 1200, 3, sums);
        Files.writeString(dir.resolve("manifest.json"), m.toJson());
        Manifest back = Manifest.read(dir);
        assertEquals(m, back);
        assertNull(back.parent());
        assertTrue(m.toJson().contains("\"parent\": null"), m.toJson());
        assertDoesNotThrow(() -> back.verify(dir));
    }

    @Test
    void tamperedByteFailsVerificationNamingTheFile() throws IOException {
        Path a = dir.resolve("a.bin");
        Files.write(a, "some weights".getBytes(StandardCharsets.UTF_8));
        TreeMap<String, String> sums = new TreeMap<>();
        sums.put("a.bin", Manifest.sha256(a));
        Manifest m = new Manifest(1, "v000000", 0, 0, sums);
        byte[] bytes = Files.readAllBytes(a);
        bytes[3] ^= 1;
        Files.write(a, bytes);
        CheckpointException e = assertThrows(CheckpointException.class, () -> m.verify(dir));
        assertTrue(e.getMessage().contains(a.toString()) && e.getMessage().contains("sha256"), e.getMessage());
    }

    @Test
    void listedFileMissingFailsVerification() {
        TreeMap<String, String> sums = new TreeMap<>();
        sums.put("gone.bin", "0".repeat(64));
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> new Manifest(1, null, 0, 0, sums).verify(dir));
        assertTrue(e.getMessage().contains(dir.resolve("gone.bin").toString()), e.getMessage());
    }

    @Test
    void badManifestJsonNamesTheKey() throws IOException {
        Path f = dir.resolve("manifest.json");
        Files.writeString(f, "{\"version\": 1, \"step\": 2, \"sha256\": {}}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> Manifest.read(dir));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("schedule_version"), e.getMessage());

        Files.writeString(f, "{\"version\": 1, \"step\": 2, \"schedule_version\": 0, \"sha256\": {\"../x\": \"" + "a".repeat(64) + "\"}}");
        e = assertThrows(CheckpointException.class, () -> Manifest.read(dir));
        assertTrue(e.getMessage().contains("../x"), e.getMessage());
    }

    /** A checkpoint's folder (its LoRA adapter): files one folder deep are listed, written and checked. */
    @Test
    void filesInAFolderOfTheCheckpointAreListedAndVerified() throws IOException {
        String digest = "a".repeat(64);
        for (String bad : new String[] {"a/b/c", "../a/b", "a/..", "/a", "a/"}) {
            Files.writeString(dir.resolve("manifest.json"), "{\"version\": 1, \"step\": 2, \"schedule_version\": 0, "
                    + "\"sha256\": {\"" + bad + "\": \"" + digest + "\"}}");
            CheckpointException e = assertThrows(CheckpointException.class, () -> Manifest.read(dir), bad);
            assertTrue(e.getMessage().contains("not a file name inside the checkpoint"), bad + ": " + e.getMessage());
        }
        Path ckpt = dir.resolve("ckpt");
        CheckpointDir.writeAtomically(ckpt, tmp -> {
            Files.writeString(tmp.resolve("top.txt"), "top");
            Files.createDirectories(tmp.resolve("lora"));
            Files.writeString(tmp.resolve("lora").resolve("inner.txt"), "abc");
        }, 3, null, 4, 0);
        Manifest m = Manifest.read(ckpt);
        // sha256("abc"), a known digest
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", m.sha256().get("lora/inner.txt"));
        assertEquals(java.util.Set.of("top.txt", "lora/inner.txt"), m.sha256().keySet());
        assertDoesNotThrow(() -> m.verify(ckpt));
        Files.writeString(ckpt.resolve("lora").resolve("inner.txt"), "abd");
        CheckpointException e = assertThrows(CheckpointException.class, () -> m.verify(ckpt));
        assertTrue(e.getMessage().contains("inner.txt"), e.getMessage());
    }
}
