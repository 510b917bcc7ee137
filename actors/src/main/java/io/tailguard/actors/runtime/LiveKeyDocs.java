package io.tailguard.actors.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * docs/live-settings.md, generated from the {@link LiveKey} declarations (a test fails when the file
 * differs). Regenerate from the repository root with
 * {@code mvn -B -o -q test -pl actors -am -Dtest=LiveKeyTest -Dsurefire.failIfNoSpecifiedTests=false -Dtailguard.regenerate=true},
 * or run {@link #main} with the file as its argument.
 */
final class LiveKeyDocs {
    static final String FILE = "docs/live-settings.md";

    private LiveKeyDocs() {
    }

    static String markdown() {
        StringBuilder b = new StringBuilder();
        b.append("# Live settings\n\n");
        b.append("<!-- Generated from actors/src/main/java/io/tailguard/actors/runtime/LiveKey.java; do not edit by hand\n");
        b.append("     (LiveKeyTest fails when this file differs; its message says how to regenerate). -->\n\n");
        b.append("A running run takes these keys without a restart: `tailguard tune KEY=VALUE ...` (full name or alias),\n");
        b.append("or an edit of the watched configuration file (full names). A request is validated as a whole (all or\n");
        b.append("nothing); every accepted change is a new settings version, and a change of a controller key is also a\n");
        b.append("new schedule version. Tuned values outlive the controller in `<out>/controller/state.json`.\n\n");
        b.append("| Key | Alias | Type | Valid | Applies in | Meaning |\n");
        b.append("|---|---|---|---|---|---|\n");
        for (LiveKey k : LiveKey.values()) {
            b.append("| `").append(k.key).append("` | `").append(k.alias).append("` | ").append(k.type.doc).append(" | ")
                    .append(k.range.replace("|", "\\|")).append(" | ").append(k.target.doc).append(" | ").append(k.doc).append(" |\n");
        }
        return b.toString();
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args.length > 0 ? args[0] : FILE);
        Files.writeString(out, markdown());
        System.out.println("wrote " + out);
    }
}
