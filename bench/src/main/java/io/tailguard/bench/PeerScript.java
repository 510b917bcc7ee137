package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.BadInput;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a peer implementation (a PyTorch script under bench/) and reads the JSON object on its last
 * stdout line. The interpreter: -Dtailguard.python, else TAILGUARD_PYTHON (.ci/run points it at its
 * torch 2.13 environment with transformers 5), else /usr/bin/python3. A peer needs torch 2 or later
 * and safetensors (the eager scripts), and transformers for transformers' own generation: an older
 * torch (Debian's 1.13 on the reference BLAS) would make a peer no user would pick.
 */
final class PeerScript {
    static final String PYTHON = System.getProperty("tailguard.python",
            System.getenv().getOrDefault("TAILGUARD_PYTHON", "/usr/bin/python3"));

    private PeerScript() {}

    /** The repository root: set by bin/tailguard, else the working directory. */
    static Path home() {
        return Path.of(System.getProperty("tailguard.home", ".")).toAbsolutePath().normalize();
    }

    /** The --pytorch switch: on, off, or auto (run the eager peer when the peer Python has torch 2 and safetensors). */
    static boolean enabled(String mode) {
        return enabled("--pytorch", mode, PeerScript::torchAvailable);
    }

    /** The --transformers switch: on, off, or auto (when the peer Python also has transformers). */
    static boolean transformersEnabled(String mode) {
        return enabled("--transformers", mode, PeerScript::transformersAvailable);
    }

    private static boolean enabled(String flag, String mode, java.util.function.BooleanSupplier available) {
        return switch (mode) {
            case "on" -> {
                if (!available.getAsBoolean()) {
                    throw new BadInput(flag + " on: " + PYTHON + " lacks " + (flag.equals("--pytorch")
                            ? "torch >= 2 or safetensors" : "torch >= 2, safetensors or transformers")
                            + " (set TAILGUARD_PYTHON to the reference Python that .ci/run builds)");
                }
                yield true;
            }
            case "off" -> false;
            case "auto" -> available.getAsBoolean();
            default -> throw new BadInput(flag + " must be auto, on or off, got '" + mode + "'");
        };
    }

    /** Removes a temporary directory tree (a peer's checkpoint copy). */
    static void deleteTree(Path root) throws IOException {
        if (root == null) {
            return;
        }
        try (var paths = Files.walk(root)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static final String TORCH_CHECK =
            "import torch, safetensors; assert int(torch.__version__.split('.')[0]) >= 2";

    static boolean torchAvailable() {
        return pythonRuns(TORCH_CHECK);
    }

    static boolean transformersAvailable() {
        return pythonRuns(TORCH_CHECK + "; import transformers");
    }

    private static boolean pythonRuns(String code) {
        try {
            Process p = new ProcessBuilder(PYTHON, "-c", code).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    static JsonObject run(String script, List<String> args) {
        Path path = home().resolve(script);
        if (!Files.isRegularFile(path)) {
            throw new BadInput(path + ": peer script not found (run from the repository, or set -Dtailguard.home)");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(PYTHON);
        cmd.add(path.toString());
        cmd.addAll(args);
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            int rc = p.waitFor();
            if (rc != 0) {
                throw new IllegalStateException(script + " exited with " + rc);
            }
            String last = out.substring(out.lastIndexOf('\n') + 1);
            return JsonParser.parseString(last).getAsJsonObject();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + script + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
