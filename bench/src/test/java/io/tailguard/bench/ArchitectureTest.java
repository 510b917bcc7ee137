package io.tailguard.bench;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.stream.Stream;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/**
 * The arrows of docs/architecture.md: model depends on nothing of ours; each engine (rollout,
 * learner, compression) only on model; recipes only on the engines and model; only the actors
 * module knows Pekko, and its command line only through the runtime; only the command line (actors'
 * cli package and the bench commands) knows picocli; nothing below bench reaches up into it.
 */
class ArchitectureTest {
    static JavaClasses classes;

    static final String[] ENGINES = {"rollout", "learner", "compression"};

    @BeforeAll
    static void importAll() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("io.tailguard");
    }

    private static String[] packages(String... names) {
        return Stream.of(names).map(p -> "io.tailguard." + p + "..").toArray(String[]::new);
    }

    @Test
    void modelDependsOnNothingOfOurs() {
        noClasses().that().resideInAPackage("io.tailguard.model..")
                .should().dependOnClassesThat().resideInAnyPackage(packages("rollout", "learner", "compression", "recipes", "actors", "bench"))
                .check(classes);
    }

    @Test
    void enginesDependOnlyOnModel() {
        for (String engine : ENGINES) {
            noClasses().that().resideInAPackage("io.tailguard." + engine + "..")
                    .should().dependOnClassesThat().resideInAnyPackage(packages(
                            Stream.of("rollout", "learner", "compression", "recipes", "actors", "bench")
                                    .filter(p -> !p.equals(engine)).toArray(String[]::new)))
                    .check(classes);
        }
    }

    @Test
    void recipesDependOnlyOnEnginesAndModel() {
        noClasses().that().resideInAPackage("io.tailguard.recipes..")
                .should().dependOnClassesThat().resideInAnyPackage(packages("actors", "bench"))
                .check(classes);
    }

    @Test
    void onlyActorsKnowPekko() {
        noClasses().that().resideOutsideOfPackage("io.tailguard.actors..")
                .should().dependOnClassesThat().resideInAPackage("org.apache.pekko..")
                .check(classes);
    }

    @Test
    void theCommandLineStartsActorsOnlyThroughTheRuntime() {
        noClasses().that().resideInAPackage("io.tailguard.actors.cli..")
                .should().dependOnClassesThat().resideInAPackage("org.apache.pekko..")
                .check(classes);
    }

    @Test
    void onlyTheCommandLineKnowsPicocli() {
        noClasses().that().resideOutsideOfPackages("io.tailguard.actors.cli..", "io.tailguard.bench..")
                .should().dependOnClassesThat().resideInAnyPackage("picocli..")
                .check(classes);
    }

    @Test
    void theActorRuntimeDoesNotKnowTheCommandLine() {
        noClasses().that().resideInAPackage("io.tailguard.actors.runtime..")
                .should().dependOnClassesThat().resideInAPackage("io.tailguard.actors.cli..")
                .check(classes);
    }

    @Test
    void nothingReachesUpIntoBench() {
        noClasses().that().resideOutsideOfPackage("io.tailguard.bench..")
                .should().dependOnClassesThat().resideInAPackage("io.tailguard.bench..")
                .check(classes);
    }
}
