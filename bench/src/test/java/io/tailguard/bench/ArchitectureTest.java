package io.tailguard.bench;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/** DESIGN.md's arrows: model depends on nothing of ours; the engines only on model; only actors knows Pekko. */
class ArchitectureTest {
    static JavaClasses classes;

    @BeforeAll
    static void importAll() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("io.tailguard");
    }

    @Test
    void modelDependsOnNothingOfOurs() {
        noClasses().that().resideInAPackage("io.tailguard.model..")
                .should().dependOnClassesThat().resideInAnyPackage("io.tailguard.rollout..", "io.tailguard.learner..",
                        "io.tailguard.compression..", "io.tailguard.actors..", "io.tailguard.cli..", "io.tailguard.bench..")
                .check(classes);
    }

    @Test
    void enginesDependOnlyOnModel() {
        for (String engine : new String[] {"rollout", "learner", "compression"}) {
            noClasses().that().resideInAPackage("io.tailguard." + engine + "..")
                    .should().dependOnClassesThat().resideInAnyPackage(
                            java.util.stream.Stream.of("rollout", "learner", "compression", "actors", "cli", "runtime", "sync", "bench")
                                    .filter(p -> !p.equals(engine)).map(p -> "io.tailguard." + p + "..").toArray(String[]::new))
                    .allowEmptyShould(true) // learner and compression have no classes yet
                    .check(classes);
        }
    }

    @Test
    void onlyActorsKnowPekko() {
        // the actors module: its CLI, the synchronous loop and the actor runtime
        noClasses().that().resideOutsideOfPackages("io.tailguard.actors..", "io.tailguard.cli..", "io.tailguard.runtime..",
                        "io.tailguard.sync..")
                .should().dependOnClassesThat().resideInAnyPackage("org.apache.pekko..")
                .check(classes);
    }

    @Test
    void theCliDoesNotReachUpIntoBench() {
        noClasses().that().resideInAnyPackage("io.tailguard.cli..", "io.tailguard.actors..", "io.tailguard.runtime..",
                        "io.tailguard.sync..")
                .should().dependOnClassesThat().resideInAPackage("io.tailguard.bench..")
                .check(classes);
    }
}
