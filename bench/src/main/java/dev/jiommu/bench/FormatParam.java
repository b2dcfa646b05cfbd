package dev.jiommu.bench;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;

/** The page-table formats a benchmark's {@code format} parameter names, all four levels (48 input bits). */
final class FormatParam {
    /** Every value the {@code format} parameter takes, the default first. */
    static final String VTD_SS = "vtd-ss";
    static final String X86_64 = "x86-64";
    static final String AMD_V1 = "amd-v1";

    private FormatParam() {
    }

    /** {@return a fresh format for {@code name}} */
    static PageTableFormat create(String name) {
        return switch (name) {
            case VTD_SS -> new VtdSecondStage(4);
            case X86_64 -> new X86_64(4, true);
            case AMD_V1 -> new AmdV1(4);
            default -> throw new IllegalArgumentException("format=" + name + ": expected vtd-ss, x86-64 or amd-v1");
        };
    }
}
