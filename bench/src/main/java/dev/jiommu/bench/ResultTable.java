package dev.jiommu.bench;

import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The results of one JMH run as one table: each score beside the allocation rate and the ratio to
 * the baseline of its own class, measured in the same run. Rendered as plain text for the console
 * and as Markdown for the report file.
 */
final class ResultTable {
    /** The GC profiler's allocation per operation (bytes). */
    static final String ALLOC_NORM = "gc.alloc.rate.norm";
    /** Methods whose name starts with this are their class's baseline. */
    static final String BASELINE_PREFIX = "baseline";
    /** The leading columns that hold words (left-aligned); the rest hold numbers. */
    private static final int TEXT_COLUMNS = 3;

    /**
     * One result.
     *
     * @param allocBytesPerOp {@link #ALLOC_NORM}, NaN without the GC profiler
     * @param baselineRatio   how many baselines one operation costs, NaN when the class has no baseline in the run
     */
    record Row(String benchmark, String params, Mode mode, double score, double error, String unit,
               double allocBytesPerOp, double baselineRatio) {
    }

    private final List<Row> rows;
    private final boolean showAlloc;
    private final Set<String> settings;
    private final String vm;

    private ResultTable(List<Row> rows, boolean showAlloc, Set<String> settings, String vm) {
        this.rows = rows;
        this.showAlloc = showAlloc;
        this.settings = settings;
        this.vm = vm;
    }

    static ResultTable of(Collection<RunResult> results) {
        List<RunResult> sorted = new ArrayList<>(results);
        sorted.sort(RunResult.DEFAULT_SORT_COMPARATOR);
        Map<String, Double> baselines = new HashMap<>();
        for (RunResult r : sorted) {
            BenchmarkParams p = r.getParams();
            if (method(p.getBenchmark()).startsWith(BASELINE_PREFIX)) {
                // Keyed with and without the params: a row takes the baseline run with its own params
                // (copying 2 MiB for mapping 2 MiB), else the class's first baseline.
                baselines.putIfAbsent(owner(p.getBenchmark()) + '/' + p.getMode() + '/' + params(p), r.getPrimaryResult().getScore());
                baselines.putIfAbsent(owner(p.getBenchmark()) + '/' + p.getMode(), r.getPrimaryResult().getScore());
            }
        }
        List<Row> rows = new ArrayList<>();
        Set<String> settings = new LinkedHashSet<>();
        boolean anyAlloc = false;
        String vm = "";
        for (RunResult r : sorted) {
            BenchmarkParams p = r.getParams();
            Result<?> primary = r.getPrimaryResult();
            Result<?> alloc = r.getSecondaryResults().get(ALLOC_NORM);
            anyAlloc |= alloc != null;
            Double baseline = baselines.getOrDefault(owner(p.getBenchmark()) + '/' + p.getMode() + '/' + params(p),
                    baselines.get(owner(p.getBenchmark()) + '/' + p.getMode()));
            double ratio = Double.NaN;
            if (baseline != null && baseline > 0 && primary.getScore() > 0) {
                // Throughput is ops per time: invert, so the ratio always reads "costs N baselines".
                ratio = p.getMode() == Mode.Throughput ? baseline / primary.getScore() : primary.getScore() / baseline;
            }
            rows.add(new Row(shortName(p.getBenchmark()), params(p), p.getMode(), primary.getScore(), primary.getScoreError(),
                    primary.getScoreUnit(), alloc == null ? Double.NaN : alloc.getScore(), ratio));
            settings.add(String.format(Locale.ROOT, "forks=%d, warmup=%d x %s, measurement=%d x %s, threads=%d",
                    p.getForks(), p.getWarmup().getCount(), p.getWarmup().getTime(), p.getMeasurement().getCount(),
                    p.getMeasurement().getTime(), p.getThreads()));
            vm = String.format(Locale.ROOT, "JMH %s, %s %s (JDK %s)", p.getJmhVersion(), p.getVmName(), p.getVmVersion(), p.getJdkVersion());
        }
        return new ResultTable(rows, anyAlloc, settings, vm);
    }

    List<Row> rows() {
        return rows;
    }

    /** {@return the JMH settings the rows were measured with, one string per distinct setting} */
    Set<String> settings() {
        return settings;
    }

    /** {@return the JMH and JVM versions of the run} */
    String vm() {
        return vm;
    }

    /** {@return the table as aligned plain text (ASCII, for any console)} */
    String toText() {
        List<String[]> cells = cells("+-", "x");
        int[] widths = new int[cells.getFirst().length];
        for (String[] line : cells) {
            for (int c = 0; c < line.length; c++) {
                widths[c] = Math.max(widths[c], line[c].length());
            }
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            String[] line = cells.get(i);
            StringBuilder text = new StringBuilder();
            for (int c = 0; c < line.length; c++) {
                // Names, params and mode left-aligned, numbers right-aligned.
                String cell = pad(line[c], widths[c], c >= TEXT_COLUMNS);
                text.append(c == 0 ? "" : "  ").append(cell);
            }
            out.append(text.toString().stripTrailing()).append('\n');
            if (i == 0) {
                out.append("-".repeat(text.length())).append('\n');
            }
        }
        return out.toString();
    }

    /** {@return the table as Markdown} */
    String toMarkdown() {
        List<String[]> cells = cells("±", "×");
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            out.append("| ").append(String.join(" | ", cells.get(i))).append(" |\n");
            if (i == 0) {
                out.append('|');
                for (int c = 0; c < cells.get(i).length; c++) {
                    out.append(c < TEXT_COLUMNS ? " --- |" : " ---: |");
                }
                out.append('\n');
            }
        }
        return out.toString();
    }

    private List<String[]> cells(String plusMinus, String times) {
        List<String[]> out = new ArrayList<>();
        List<String> header = new ArrayList<>(List.of("Benchmark", "Params", "Mode", "Score", plusMinus + " Error", "Units"));
        if (showAlloc) {
            header.add("B/op");
        }
        header.add("vs baseline");
        out.add(header.toArray(String[]::new));
        for (Row row : rows) {
            List<String> line = new ArrayList<>(List.of(row.benchmark(), row.params(), row.mode().shortLabel(),
                    number(row.score()), Double.isNaN(row.error()) ? "n/a" : plusMinus + " " + number(row.error()), row.unit()));
            if (showAlloc) {
                line.add(Double.isNaN(row.allocBytesPerOp()) ? "n/a" : String.format(Locale.ROOT, "%.3f", row.allocBytesPerOp()));
            }
            line.add(Double.isNaN(row.baselineRatio()) ? "n/a" : String.format(Locale.ROOT, "%.2f%s", row.baselineRatio(), times));
            out.add(line.toArray(String[]::new));
        }
        return out;
    }

    /** {@return the score with about four significant digits, never in exponent form} */
    static String number(double value) {
        if (Double.isNaN(value)) {
            return "n/a";
        }
        double magnitude = Math.abs(value);
        String pattern = magnitude >= 1000 ? "%.0f" : magnitude >= 100 ? "%.1f" : magnitude >= 10 ? "%.2f" : "%.3f";
        return String.format(Locale.ROOT, pattern, value);
    }

    private static String pad(String s, int width, boolean right) {
        String fill = " ".repeat(width - s.length());
        return right ? fill + s : s + fill;
    }

    private static String params(BenchmarkParams p) {
        List<String> parts = new ArrayList<>();
        for (String key : p.getParamsKeys()) {
            parts.add(key + "=" + p.getParam(key));
        }
        return parts.isEmpty() ? "-" : String.join(" ", parts);
    }

    /** {@return "Class.method" from the fully qualified benchmark name} */
    private static String shortName(String benchmark) {
        int method = benchmark.lastIndexOf('.');
        int owner = benchmark.lastIndexOf('.', method - 1);
        return benchmark.substring(owner + 1);
    }

    private static String owner(String benchmark) {
        return benchmark.substring(0, benchmark.lastIndexOf('.'));
    }

    private static String method(String benchmark) {
        return benchmark.substring(benchmark.lastIndexOf('.') + 1);
    }
}
