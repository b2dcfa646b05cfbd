package dev.jiommu.bench;

import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.hw.vtd.VtdUnit;
import dev.jiommu.hw.vtd.spec.PasidDirEntry;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.RootEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.PageTable;
import dev.jiommu.pt.PageTableFormat;
import dev.jiommu.pt.Prot;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;

/**
 * A scalable-mode VT-d unit with one device (RID 00:02.0) whose RID_PASID entry translates
 * {@code pages} 4 KiB pages at {@link #IOVA} to {@link #dataPa}, through a second stage, or a
 * nested first stage over a second stage, built by hand the way a driver would.
 */
final class VtdRig implements AutoCloseable {
    static final int RID = 0x0010;
    static final long IOVA = 0x40_0000_0000L;
    static final long GPA_OFFSET = 0x100_0000_0000L;
    static final int DID = 3;

    final PhysicalMemory memory = PhysicalMemory.create(1L << 32);
    final VtdUnit unit;
    final int pages;
    final long dataPa;
    long pasidDir;

    VtdRig(VtdConfig config, int pages) {
        this.pages = pages;
        unit = new VtdUnit("bench", config, memory);
        dataPa = memory.allocate(pages * 4096L, 1L << 21);
        long root = memory.allocateFrame();
        long contexts = memory.allocateFrame();
        pasidDir = memory.allocateFrame();
        memory.write64(root + (RID >>> 8) * 16L, contexts | RootEntry.P);
        ScalableContextEntry ce = ScalableContextEntry.of(pasidDir, 0, 0);
        memory.write64(contexts + (RID & 0x7f) * 32L, ce.q0());
        unit.write64(VtdRegs.RTADDR, root | VtdRegs.RTADDR_SMT);
        unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_SRTP);
        unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_TE);
    }

    private void pasidEntry(PasidEntry pe) {
        long table = memory.allocateFrame();
        memory.write64(pasidDir, PasidDirEntry.of(table).raw());
        memory.write64(table + 16, pe.q2());
        memory.write64(table + 8, pe.q1());
        memory.write64(table, pe.q0());
    }

    /** RID_PASID translates through a 4-level second stage, with leaves of {@code pageBytes} (4 KiB or 2 MiB). */
    void secondStage(long pageBytes, boolean ssade) {
        PageTable ss = new PageTable(new VtdSecondStage(4), memory, (1L << 12) | pageBytes);
        ss.map(IOVA, dataPa, pages * 4096L, Prot.READ_WRITE);
        pasidEntry(PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, PasidEntry.PGTT_SECOND_STAGE, ssade), DID, 0));
    }

    /** RID_PASID translates through a nested 4-level first stage (GPA pointers) over a 4-level second stage. */
    void nested(int pgtt) {
        X86_64 fsFormat = new X86_64(4, true);
        PageTable fs = new PageTable(fsFormat, memory, 1L << 12);
        PageTable ss = new PageTable(new VtdSecondStage(4), memory, 1L << 12);
        long dataGpa = dataPa + GPA_OFFSET;
        fs.map(IOVA, dataGpa, pages * 4096L, Prot.READ_WRITE);
        ss.map(dataGpa, dataPa, pages * 4096L, Prot.READ_WRITE);
        rewrite(fsFormat, fs.rootAddress(), fsFormat.topLevel(), ss);
        pasidEntry(PasidEntry.of(PasidEntry.q0(ss.rootAddress(), 2, pgtt, false), DID,
                PasidEntry.q2(fs.rootAddress() + GPA_OFFSET, 0, 0)));
    }

    private void rewrite(PageTableFormat format, long table, int level, PageTable ss) {
        ss.map(table + GPA_OFFSET, table, 4096, Prot.READ_WRITE);
        if (level == 0) {
            return;
        }
        for (int i = 0; i < 512; i++) {
            long entry = memory.read64(table + i * 8L);
            if (format.kind(entry, level) == PageTableFormat.TABLE) {
                long child = format.tableAddress(entry);
                rewrite(format, child, level - 1, ss);
                memory.write64(table + i * 8L, (entry & ~X86_64.ADDR_MASK) | (child + GPA_OFFSET));
            }
        }
    }

    void expect(long got, long expected) {
        if (got != expected) {
            throw new IllegalStateException(String.format("translation gave 0x%x, expected 0x%x", got, expected));
        }
    }

    @Override
    public void close() {
        memory.close();
    }
}
