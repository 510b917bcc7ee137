package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigOrigin;
import com.typesafe.config.ConfigUtil;
import com.typesafe.config.ConfigValue;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * The keys a user may set, checked on one layer the user wrote (a configuration file, a `--set`
 * pair) before it is merged, so that system properties and Typesafe Config's environment overrides,
 * which are merged in too, are not checked. The known keys are those of every reference.conf on the
 * class path: under {@code tailguard} every key must be one a reference.conf defines; any other
 * top-level section must be one a reference.conf defines (pekko's, a library's), and the keys below
 * it are that library's to read. The command line checks its files and `--set` pairs with it
 * (exit 2), the config-file watcher each edit of the watched file (refused, the running values kept).
 */
public final class ConfigKeys {
    private static final String OURS = "tailguard";

    // unresolved: the reference files' own substitutions (pekko's) need not resolve to list keys
    private static final ConfigObject REFERENCE =
            ConfigFactory.parseResources(ConfigKeys.class.getClassLoader(), "reference.conf").root();

    private ConfigKeys() {
    }

    /**
     * Throws IllegalArgumentException naming the first unknown key (in key order) and where it came from:
     * {@code where} (a `--set` pair), or, when {@code file}, the file and line the key was read from
     * (an included file is named as itself).
     */
    public static void check(Config layer, String where, boolean file) {
        check(layer.root(), REFERENCE, List.of(), where, file);
    }

    private static void check(ConfigObject user, ConfigObject reference, List<String> path, String where, boolean file) {
        TreeSet<String> keys;
        try {
            keys = new TreeSet<>(user.keySet());
        } catch (ConfigException.NotResolved e) {
            // an object merged with a substitution (`a = ${b} { c = 1 }`): its keys are known only
            // once resolved; RunSettings still checks the merged run sections
            return;
        }
        for (String key : keys) {
            ConfigValue u = user.get(key);
            ConfigValue r = reference.get(key);
            List<String> p = new ArrayList<>(path);
            p.add(key);
            if (r == null) {
                throw unknown(p, u, reference, where, file);
            }
            boolean ours = p.get(0).equals(OURS);
            if (ours && u instanceof ConfigObject uo && r instanceof ConfigObject ro && !isDispatcher(ro)) {
                check(uo, ro, p, where, file);
            }
        }
    }

    /**
     * A Pekko dispatcher's section (tailguard.blocking-dispatcher, tailguard.blocking-io) takes any of
     * Pekko's dispatcher keys (thread-pool-executor.core-pool-size-min, ...), not only those
     * reference.conf sets.
     */
    private static boolean isDispatcher(ConfigObject section) {
        ConfigValue type = section.get("type");
        return type != null && "Dispatcher".equals(String.valueOf(type.unwrapped()));
    }

    private static IllegalArgumentException unknown(List<String> path, ConfigValue value, ConfigObject reference, String where, boolean file) {
        List<String> leaf = new ArrayList<>(path);
        // name what the user typed down to its first value: tailguard.trian.steps, not tailguard.trian
        ConfigValue v = value;
        try {
            while (v instanceof ConfigObject o && !o.isEmpty()) {
                String first = new TreeSet<>(o.keySet()).first();
                leaf.add(first);
                v = o.get(first);
            }
        } catch (ConfigException.NotResolved e) {
            // the path so far names it
        }
        String known = String.join(", ", new TreeSet<>(reference.keySet()));
        String under = path.size() == 1 ? "known top-level sections: " : "known under " + ConfigUtil.joinPath(path.subList(0, path.size() - 1)) + ": ";
        return new IllegalArgumentException(source(value, where, file) + ": " + ConfigUtil.joinPath(leaf) + ": unknown key (" + under + known + ")");
    }

    private static String source(ConfigValue value, String where, boolean file) {
        ConfigOrigin o = value.origin();
        if (!file || o == null || o.filename() == null) {
            return where;
        }
        return o.filename() + (o.lineNumber() > 0 ? ", line " + o.lineNumber() : "");
    }
}
