package dev.jiommu.iommufd;

import org.junit.platform.engine.FilterResult;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.discovery.ClassNameFilter;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.PostDiscoveryFilter;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The ported conformance cases (every {@link IommufdFixture} subclass but the *AbiTest twins, and the
 * kernel-only checks of {@link #KERNEL_ONLY}) run
 * against the real {@code /dev/iommu}, as {@code ./jiommu verify-kernel} does inside the reference
 * kernel: sets {@code jiommu.backend=kernel}, runs them through the JUnit launcher, prints each
 * failure and a closing line {@code verify-kernel: N passed, M failed, K skipped}. Exits 1 when a
 * case failed. Cases that need what only the emulation has skip themselves (IommufdFixture).
 */
public final class KernelConformance {
    /** Beyond the fixtures: what needs a real kernel to say anything (the backend choice, a real VFIO device). */
    private static final List<String> KERNEL_ONLY = List.of("dev.jiommu.app.IommufdOpenTest", "dev.jiommu.abi.VfioCdevTest");

    private KernelConformance() {
    }

    public static void main(String[] args) {
        System.setProperty("jiommu.backend", "kernel");
        PostDiscoveryFilter fixturesOnly = descriptor -> descriptor.getSource()
                .filter(ClassSource.class::isInstance).map(source -> ((ClassSource) source).getJavaClass())
                .map(type -> IommufdFixture.class.isAssignableFrom(type) || KERNEL_ONLY.contains(type.getName())
                        ? FilterResult.included("a conformance fixture")
                        : FilterResult.excluded("not an IommufdFixture"))
                .orElse(FilterResult.included("member of an included class"));
        LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request()
                .filters(ClassNameFilter.excludeClassNamePatterns(".*AbiTest"), fixturesOnly);
        if (args.length == 0) {
            request.selectors(DiscoverySelectors.selectPackage(KernelConformance.class.getPackageName()));
            KERNEL_ONLY.forEach(name -> request.selectors(DiscoverySelectors.selectClass(name)));
        } else {
            for (String name : args) {
                request.selectors(DiscoverySelectors.selectClass(name.contains(".") ? name : KernelConformance.class.getPackageName() + "." + name));
            }
        }
        Tally tally = new Tally();
        Launcher launcher = LauncherFactory.create();
        LauncherDiscoveryRequest discovery = request.build();
        launcher.execute(discovery, tally);
        tally.print();
        System.exit(tally.failed.get() == 0 && tally.passed.get() > 0 ? 0 : 1);
    }

    /** Counts leaf tests per class, keeps each failure's first line. */
    private static final class Tally implements TestExecutionListener {
        final AtomicInteger passed = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        final AtomicInteger skipped = new AtomicInteger();
        final List<String> failures = new ArrayList<>();
        final Map<String, int[]> perClass = new TreeMap<>();
        final Map<String, Integer> skipReasons = new TreeMap<>();

        private int[] row(TestIdentifier test) {
            String owner = test.getSource().map(Object::toString).orElse("?");
            int at = owner.indexOf("className = '");
            if (at >= 0) {
                int end = owner.indexOf('\'', at + 13);
                owner = owner.substring(at + 13, end).replaceFirst(".*\\.", "");
            }
            return perClass.computeIfAbsent(owner, k -> new int[3]);
        }

        /** One line per case on stderr, so a run that dies shows where. */
        @Override
        public void executionStarted(TestIdentifier test) {
            if (test.isTest() && Boolean.getBoolean("jiommu.verbose")) {
                System.err.println("start " + test.getUniqueId());
            }
        }

        @Override
        public void executionSkipped(TestIdentifier test, String reason) {
            if (test.isTest()) {
                skipped.incrementAndGet();
                row(test)[2]++;
            }
        }

        @Override
        public void executionFinished(TestIdentifier test, TestExecutionResult result) {
            if (!test.isTest()) {
                if (result.getStatus() == TestExecutionResult.Status.FAILED) {
                    failed.incrementAndGet();
                    failures.add(test.getDisplayName() + ": " + firstLine(result));
                }
                return;
            }
            switch (result.getStatus()) {
                case SUCCESSFUL -> {
                    passed.incrementAndGet();
                    row(test)[0]++;
                }
                case ABORTED -> {
                    skipped.incrementAndGet();
                    row(test)[2]++;
                    String reason = result.getThrowable().map(Throwable::getMessage).orElse("?").replaceFirst("^Assumption failed: ", "");
                    skipReasons.merge(reason, 1, Integer::sum);
                }
                case FAILED -> {
                    failed.incrementAndGet();
                    row(test)[1]++;
                    failures.add(test.getUniqueId().replaceAll("\\[engine:junit-jupiter]/|\\[class:dev\\.jiommu\\.iommufd\\.", "")
                            .replaceAll("\\[[a-z-]+:", "").replace("]", "") + ": " + firstLine(result));
                }
            }
        }

        private static String firstLine(TestExecutionResult result) {
            return result.getThrowable().map(t -> {
                String compact = String.valueOf(t.getMessage()).strip().replaceAll("\\s+", " ");
                String where = "";
                for (StackTraceElement frame : t.getStackTrace()) {
                    if (frame.getClassName().startsWith("dev.jiommu.iommufd.") && frame.getFileName() != null
                            && frame.getFileName().endsWith("Test.java")) {
                        where = " (" + frame.getFileName() + ":" + frame.getLineNumber() + ")";
                        break;
                    }
                }
                return t.getClass().getSimpleName() + where + ": " + (compact.length() > 300 ? compact.substring(0, 300) + "…" : compact);
            }).orElse("?");
        }

        void print() {
            System.out.println();
            System.out.printf("%-32s %6s %6s %6s%n", "class", "passed", "failed", "skipped");
            perClass.forEach((name, r) -> System.out.printf("%-32s %6d %6d %6d%n", name, r[0], r[1], r[2]));
            if (!skipReasons.isEmpty()) {
                System.out.println();
                System.out.println("skipped, by reason:");
                skipReasons.forEach((reason, n) -> System.out.printf("  %4d  %s%n", n, reason));
            }
            if (!failures.isEmpty()) {
                System.out.println();
                System.out.println("failures:");
                failures.forEach(f -> System.out.println("  " + f));
            }
            System.out.printf("%nverify-kernel: %d passed, %d failed, %d skipped%n", passed.get(), failed.get(), skipped.get());
        }
    }
}
