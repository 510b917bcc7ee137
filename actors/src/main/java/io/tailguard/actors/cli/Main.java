package io.tailguard.actors.cli;

import io.tailguard.model.io.CheckpointException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.util.ServiceLoader;

/**
 * {@code bin/tailguard}: exit 0 on success, 2 on bad input with one line on stderr, 1 on an
 * internal failure (with the stack trace only under --verbose).
 */
@Command(name = "tailguard", mixinStandardHelpOptions = true, version = "tailguard 0.1.0",
        description = "RLVR training with tail-guarded sparse-attention rollouts.",
        subcommands = {InitModelCommand.class, PretrainCommand.class, GenerateCommand.class, TrainCommand.class, NodeCommand.class, TuneCommand.class, StatusCommand.class, TrainSyncCommand.class,
                EvalCommand.class, VerifyCommand.class, MismatchCommand.class,
                CalibrateCommand.class, CompressCommand.class, CompareRunsCommand.class})
public final class Main {
    public static final int BAD_INPUT = 2;
    public static final int FAILURE = 1;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        boolean verbose = java.util.Arrays.asList(args).contains("--verbose");
        CommandLine cli = new CommandLine(new Main());
        for (CommandProvider p : ServiceLoader.load(CommandProvider.class)) {
            cli.addSubcommand(p.command());
        }
        cli.setParameterExceptionHandler((ex, a) -> {
            System.err.println("tailguard: " + oneLine(ex.getMessage()) + " (see --help)");
            return BAD_INPUT;
        });
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            if (ex instanceof BadInput || ex instanceof CheckpointException || ex instanceof IllegalArgumentException) {
                System.err.println("tailguard: " + oneLine(ex.getMessage()));
                if (verbose) {
                    ex.printStackTrace();
                }
                return BAD_INPUT;
            }
            if (ex instanceof RunStopped) {
                System.err.println("tailguard: " + oneLine(ex.getMessage()));
                return FAILURE;
            }
            if (LibtorchFailure.matches(ex)) {
                System.err.println("tailguard: " + LibtorchFailure.line(ex, LibtorchFailure.bundledFlavor()));
                if (verbose) {
                    ex.printStackTrace();
                }
                return FAILURE;
            }
            System.err.println("tailguard: internal error: " + oneLine(String.valueOf(ex)));
            if (verbose) {
                ex.printStackTrace();
            }
            return FAILURE;
        });
        return cli.execute(args);
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ').strip();
    }
}
