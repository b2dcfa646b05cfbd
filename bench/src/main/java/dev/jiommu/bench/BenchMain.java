package dev.jiommu.bench;

import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.BenchmarkList;
import org.openjdk.jmh.runner.BenchmarkListEntry;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.ProfilerConfig;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The main class of {@code benchmarks.jar} ({@code ./jiommu bench}): runs JMH with the command line's
 * options, then prints every result in one table beside its class's baseline and writes the same
 * table as Markdown.
 *
 * <p>JMH's own options pass through unchanged (a benchmark regex, {@code -f}, {@code -wi}, {@code -p},
 * {@code -prof}, {@code -rf} …; {@code -h} lists them). Added here: {@code --quick}, {@code --gc} and
 * {@code --report FILE}. When a regex selects some benchmarks of a class, that class's baseline runs
 * too, since no number is reported without it.
 */
public final class BenchMain {
    private static final String USAGE = """
            Usage: ./jiommu bench [--quick] [--gc] [--report FILE] [JMH options] [benchmark regex ...]
              --quick        a short smoke run: 1 fork, 2 x 200 ms warmup, 3 x 300 ms measurement
                             (any of -f, -wi, -w, -i, -r given explicitly still wins)
              --gc           add the GC profiler, so the table shows the allocation per operation (B/op)
              --report FILE  where to write the Markdown table (default: bench-report.md beside benchmarks.jar)
            JMH options follow (-h); benchmarks: -l.
            """;

    private BenchMain() {
    }

    public static void main(String[] args) throws IOException {
        boolean quick = false;
        boolean gc = false;
        Path report = null;
        List<String> jmhArgs = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--quick" -> quick = true;
                case "--gc" -> gc = true;
                case "--help" -> {
                    System.out.print(USAGE);
                    return;
                }
                case "--report" -> {
                    if (i + 1 == args.length) {
                        System.err.println("--report needs a file name");
                        System.exit(2);
                    }
                    report = Path.of(args[++i]);
                }
                default -> jmhArgs.add(args[i]);
            }
        }
        CommandLineOptions cmd;
        try {
            cmd = new CommandLineOptions(jmhArgs.toArray(String[]::new));
        } catch (CommandLineOptionException e) {
            System.err.println("Error parsing command line: " + e.getMessage());
            System.err.print(USAGE);
            System.exit(2);
            return;
        }
        if (cmd.shouldHelp()) {
            System.out.print(USAGE);
            System.out.println();
            cmd.showHelp();
            return;
        }
        if (cmd.shouldListProfilers()) {
            cmd.listProfilers();
            return;
        }
        if (cmd.shouldListResultFormats()) {
            cmd.listResultFormats();
            return;
        }

        ChainedOptionsBuilder options = new OptionsBuilder().parent(cmd);
        if (quick) {
            applyQuick(cmd, options);
        }
        if (gc && cmd.getProfilers().stream().noneMatch(BenchMain::isGcProfiler)) {
            options.addProfiler(GCProfiler.class);
        }
        for (String baseline : missingBaselines(cmd)) {
            System.out.println("bench: also running " + baseline + ", the baseline of a selected benchmark");
            options.include("^" + Pattern.quote(baseline) + "$");
        }
        Runner runner = new Runner(options.build());
        if (cmd.shouldList()) {
            runner.list();
            return;
        }
        if (cmd.shouldListWithParams()) {
            runner.listWithParams(cmd);
            return;
        }

        Collection<RunResult> results;
        try {
            results = runner.run();
        } catch (RunnerException e) {
            System.err.print("ERROR: ");
            e.printStackTrace(System.err);
            System.exit(1);
            return;
        }
        if (results.isEmpty()) {
            System.err.println("No benchmark ran: does the regex match any (-l lists them)?");
            System.exit(1);
        }
        ResultTable table = ResultTable.of(results);
        PrintStream out = System.out;
        out.println();
        out.println("jiommu benchmarks (" + table.vm() + ")");
        for (String setting : table.settings()) {
            out.println("  " + setting);
        }
        out.println();
        out.print(table.toText());
        Path file = report != null ? report : defaultReport();
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, markdown(table, args));
        out.println();
        out.println("Report written to " + file);
    }

    /** Short settings for a smoke run, each only where the command line gave none. */
    private static void applyQuick(CommandLineOptions cmd, ChainedOptionsBuilder options) {
        if (!cmd.getForkCount().hasValue()) {
            options.forks(1);
        }
        if (!cmd.getWarmupIterations().hasValue()) {
            options.warmupIterations(2);
        }
        if (!cmd.getWarmupTime().hasValue()) {
            options.warmupTime(TimeValue.milliseconds(200));
        }
        if (!cmd.getMeasurementIterations().hasValue()) {
            options.measurementIterations(3);
        }
        if (!cmd.getMeasurementTime().hasValue()) {
            options.measurementTime(TimeValue.milliseconds(300));
        }
    }

    private static boolean isGcProfiler(ProfilerConfig profiler) {
        return profiler.getKlass().equals("gc") || profiler.getKlass().equals(GCProfiler.class.getName());
    }

    /** {@return the baseline benchmarks of every class the regexes select but whose baseline they miss} */
    private static Set<String> missingBaselines(CommandLineOptions cmd) {
        Set<String> missing = new TreeSet<>();
        if (cmd.getIncludes().isEmpty()) {
            return missing; // everything runs, baselines included
        }
        var silent = OutputFormatFactory.createFormatInstance(System.out, VerboseMode.SILENT);
        BenchmarkList list = BenchmarkList.defaultList();
        Set<String> selected = new TreeSet<>();
        Set<String> owners = new TreeSet<>();
        for (BenchmarkListEntry entry : list.find(silent, cmd.getIncludes(), cmd.getExcludes())) {
            selected.add(entry.getUsername());
            owners.add(entry.getUserClassQName());
        }
        for (BenchmarkListEntry entry : list.find(silent, List.of(".*"), List.of())) {
            String name = entry.getUsername();
            boolean baseline = name.substring(name.lastIndexOf('.') + 1).startsWith(ResultTable.BASELINE_PREFIX);
            if (baseline && owners.contains(entry.getUserClassQName()) && !selected.contains(name)) {
                missing.add(name);
            }
        }
        return missing;
    }

    /** {@return bench-report.md beside benchmarks.jar (or beside target/classes when run from classes)} */
    private static Path defaultReport() {
        try {
            Path code = Path.of(BenchMain.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return code.toAbsolutePath().getParent().resolve("bench-report.md");
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            return Path.of("bench-report.md");
        }
    }

    private static String markdown(ResultTable table, String[] args) {
        StringBuilder md = new StringBuilder();
        md.append("# jiommu benchmark report\n\n");
        md.append("- Run: ").append(Instant.now().truncatedTo(ChronoUnit.SECONDS)).append(", arguments: ")
                .append(args.length == 0 ? "none" : "`" + String.join(" ", args) + "`").append('\n');
        md.append("- ").append(table.vm()).append(", ").append(Runtime.getRuntime().availableProcessors())
                .append(" processors available\n");
        for (String setting : table.settings()) {
            md.append("- JMH settings: ").append(setting).append('\n');
        }
        md.append("- \"vs baseline\": the score over the score of the same class's `baseline…` benchmark in this run")
                .append(" (four dependent 64-bit reads and one write on off-heap memory)\n\n");
        md.append(table.toMarkdown());
        return md.toString();
    }
}
