package dev.jiommu.app;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.assertj.core.api.Assertions.assertThat;

class CliTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        return Cli.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
    }

    @Test
    void demoReportsEveryFormatAgreeingAndLeakFree() {
        assertThat(run("demo")).isZero();
        String report = out.toString();
        for (var format : DemoCommand.formats().keySet()) {
            assertThat(report).contains(format.name());
        }
        assertThat(report).contains("All formats: hardware walks agree with the software lookup, no table page leaked.");
        assertThat(report).contains("2 x 4K, 1 x 2M, 1 x 1G, 1 x 2M, 1 x 4K");
        assertThat(report).contains("PERMISSION").contains("NOT_PRESENT");
        assertThat(report).doesNotContain("UNEXPECTED");
        assertThat(report).contains("iommufd: an IOAS with a mock device")
                .contains("pins per page: 1")
                .containsPattern("close .*pins per page 0, pinned_vm 0, 0 frames leaked")
                .doesNotContain("this is a bug");
        assertThat(report).contains("iommufd: nesting on a vIOMMU")
                .containsPattern("invalidate nested HWPT, 1 entry .*: yes")
                .containsPattern("invalidate vIOMMU, 1 entry .*: yes")
                .contains("faulted at 0xdeadb000").contains("answered SUCCESS (8 bytes)")
                .contains("virt_id 0x42")
                .contains("bitmap bits [0, 5, 9] of 16; read again: 0");
    }

    @Test
    void versionNamesTheRuntime() {
        assertThat(run("version")).isZero();
        assertThat(out.toString()).contains("jiommu").contains("Java 25");
    }

    @Test
    void unknownCommandFailsWithUsage() {
        assertThat(run("frobnicate")).isNotZero();
        assertThat(err.toString()).contains("Unmatched argument");
    }
}
