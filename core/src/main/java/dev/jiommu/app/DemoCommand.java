package dev.jiommu.app;

import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.ArmLpae;
import dev.jiommu.pt.format.MockFormat;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code jiommu demo}: the main job. Every page-table format end to end, then an IOAS with a mock device. */
@Command(name = "demo", description = "Build page tables in every format, map mixed page sizes, walk them as the hardware does, track dirty pages.")
final class DemoCommand implements Runnable {
    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    /** The formats shown, each with what it is used for. */
    static Map<PageTableFormat, String> formats() {
        Map<PageTableFormat, String> formats = new LinkedHashMap<>();
        formats.put(new VtdSecondStage(4), "Intel VT-d second stage");
        formats.put(new X86_64(4, true), "x86-64: VT-d first stage, AMD v2");
        formats.put(new AmdV1(4), "AMD-Vi v1 host table, size-encoded large pages");
        formats.put(new ArmLpae(ArmLpae.Stage.S1, ArmLpae.Granule.SZ_4K, 48, 48), "Arm SMMUv3 stage 1, 4K granule");
        formats.put(new ArmLpae(ArmLpae.Stage.S2, ArmLpae.Granule.SZ_4K, 40, 40), "Arm SMMUv3 stage 2, 2 concatenated start tables");
        formats.put(new ArmLpae(ArmLpae.Stage.S1, ArmLpae.Granule.SZ_16K, 48, 48), "Arm SMMUv3 stage 1, 16K granule");
        formats.put(new ArmLpae(ArmLpae.Stage.S1, ArmLpae.Granule.SZ_64K, 48, 48), "Arm SMMUv3 stage 1, 64K granule");
        formats.put(new MockFormat(), "iommufd selftest mock: 2K IO pages");
        return formats;
    }

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("jiommu demo: page tables in every format, built by the driver-side algorithm,");
        out.println("walked the way the IOMMU hardware walks them.");
        out.println();
        int failures = 0;
        StringBuilder summary = new StringBuilder();
        summary.append(String.format("%-28s %7s %7s %12s %11s %9s%n", "format", "leaves", "tables", "walks agree", "reads/walk", "leaked"));
        for (Map.Entry<PageTableFormat, String> e : formats().entrySet()) {
            PageTableFormat format = e.getKey();
            PageTableDemo.Report r = PageTableDemo.run(format, e.getValue());
            out.printf("%s  (%s)%n", r.format(), r.description());
            out.printf("  geometry    %d levels, %d-bit input%s, %d-bit output, page sizes %s%n", format.levels(),
                    format.inputBits(), format.signExtended() ? " sign-extended" : "", format.outputBits(), Sizes.bitmap(format.pageSizes()));
            out.printf("  map         iova 0x%x..0x%x -> pa iova+0x%x: %s%n", r.iova(), r.iova() + r.lengthBytes() - 1,
                    r.paOffset(), String.join(", ", r.leafRuns()));
            out.printf("              %d leaves in %d table pages%n", r.leaves(), r.tablePages());
            out.printf("  walk        first and last byte of every page: %d/%d agree with the software lookup, %.1f entry reads each%n",
                    r.walksAgreeing(), r.walks(), r.readsPerWalk());
            out.printf("  faults      past the end: %s%n", r.notMapped());
            out.printf("              write to a read-only page: %s%n", r.readOnlyWrite());
            out.printf("  dirty       3 DMA writes -> %s; read again after clear: %d dirty%n",
                    String.join(", ", r.dirtyRanges()), r.dirtyPagesAfterClear());
            out.printf("  unmap       all: %d table page%s left (the root: %d); after destroy %d frames leaked%n%n",
                    r.tablePagesAfterUnmap(), r.tablePagesAfterUnmap() == 1 ? "" : "s", r.rootTablePages(), r.framesLeaked());
            summary.append(String.format("%-28s %7d %7d %6d/%-5d %11.1f %9d%n", r.format(), r.leaves(), r.tablePages(),
                    r.walksAgreeing(), r.walks(), r.readsPerWalk(), r.framesLeaked()));
            if (r.walksAgreeing() != r.walks() || r.framesLeaked() != 0 || r.tablePagesAfterUnmap() != r.rootTablePages()) {
                failures++;
            }
        }
        out.print(summary);
        out.println();
        out.println(failures == 0 ? "All formats: hardware walks agree with the software lookup, no table page leaked."
                : failures + " format(s) disagreed or leaked: this is a bug.");
        out.println();
        if (!IoasDemo.run(out)) {
            failures++;
            out.println("iommufd: pages stayed pinned or frames leaked: this is a bug.");
        }
        try {
            if (!NestingDemo.run(out)) {
                failures++;
                out.println("iommufd nesting: a value read back was not what the scenario set: this is a bug.");
            }
            if (!VtdDemo.run(out)) {
                failures++;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CommandLine.ExecutionException(spec.commandLine(), "interrupted", e);
        }
        out.flush();
        if (failures != 0) {
            throw new CommandLine.ExecutionException(spec.commandLine(), failures + " format(s) failed the demo checks");
        }
    }
}
