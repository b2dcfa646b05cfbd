package dev.jiommu.app;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/** The {@code jiommu} command line: one subcommand per job. */
@Command(name = "jiommu", mixinStandardHelpOptions = true, versionProvider = Cli.Version.class,
        description = "The IOMMU virtualization stack of the JVM: page tables, emulated IOMMUs, iommufd.",
        subcommands = {Cli.VersionCommand.class, DemoCommand.class, ServeCommand.class})
public final class Cli implements Runnable {
    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs the CLI with the given streams; {@return the exit code} */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new Cli());
        cli.setOut(out);
        cli.setErr(err);
        return cli.execute(args);
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code jiommu version}. */
    @Command(name = "version", description = "Print the jiommu version and the Java runtime.")
    static final class VersionCommand implements Runnable {
        @CommandLine.Spec
        private CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            for (String line : new Version().getVersion()) {
                spec.commandLine().getOut().println(line);
            }
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String version = Cli.class.getPackage().getImplementationVersion();
            return new String[] {
                "jiommu " + (version == null ? "(development build)" : version),
                "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")"
            };
        }
    }
}
