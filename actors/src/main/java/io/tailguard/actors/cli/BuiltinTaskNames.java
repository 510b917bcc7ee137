package io.tailguard.actors.cli;

import io.tailguard.rollout.tasks.Tasks;

import java.util.Iterator;

/** The built-in task names for --task's help and completion (${COMPLETION-CANDIDATES}), from {@link Tasks}. */
final class BuiltinTaskNames implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        return Tasks.builtinNames().iterator();
    }
}
