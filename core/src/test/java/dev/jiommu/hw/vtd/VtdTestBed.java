package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PasidDirEntry;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.RootEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.mem.PhysicalMemory;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Builds VT-d structures by hand in physical memory and drives a unit through its registers, the
 * way QEMU's qtest iommu-intel-test does: no driver, just tables, descriptors and DMA.
 */
final class VtdTestBed implements AutoCloseable {
    final PhysicalMemory memory = PhysicalMemory.create(1L << 33);
    final VtdUnit unit;
    final boolean scalable;
    final long rootTable;
    final long queue;
    final long status;
    private long tail;
    private int statusSeq = 1;
    final List<long[]> msis = new ArrayList<>();

    VtdTestBed(VtdConfig config, boolean scalable) {
        this.unit = new VtdUnit("dmar0", config, memory);
        this.scalable = scalable;
        unit.connect((address, data) -> msis.add(new long[] {address, data}));
        rootTable = memory.allocateFrame();
        queue = memory.allocateFrame();
        status = memory.allocateFrame();
        unit.write64(VtdRegs.RTADDR, rootTable | (scalable ? VtdRegs.RTADDR_SMT : 0));
        unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_SRTP);
        assertThat(unit.read32(VtdRegs.GSTS) & (1 << 30)).as("RTPS").isNotZero();
        unit.write64(VtdRegs.IQA, queue | (scalable ? VtdRegs.IQA_DW : 0));
        unit.write64(VtdRegs.IQT, 0);
        unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_QIE);
        unit.write32(VtdRegs.GCMD, VtdRegs.GCMD_QIE | VtdRegs.GCMD_TE);
        assertThat(unit.read32(VtdRegs.GSTS) & (VtdRegs.GCMD_QIE | VtdRegs.GCMD_TE)).isEqualTo(VtdRegs.GCMD_QIE | VtdRegs.GCMD_TE);
    }

    static VtdTestBed legacy() {
        return new VtdTestBed(VtdConfig.scalable(), false);
    }

    static VtdTestBed scalable() {
        return new VtdTestBed(VtdConfig.scalable(), true);
    }

    DmaTestDevice device(int rid) {
        return new DmaTestDevice("dma" + rid, PciRequesterId.of(rid), memory, unit, DmaTestDevice.Options.PLAIN, 1 << 20);
    }

    // ---- legacy structures ----

    private long contextTable(int bus, boolean upper) {
        long at = rootTable + bus * 16L + (upper ? 8 : 0);
        long entry = memory.read64(at);
        if ((entry & 1) == 0) {
            long table = memory.allocateFrame();
            memory.write64(at, table | 1);
            return table;
        }
        return entry & RootEntry.ADDR_MASK;
    }

    void legacyContext(int rid, long slptptr, int tt, int aw, int did) {
        ContextEntry ce = ContextEntry.of(slptptr, tt, aw, did);
        long at = contextTable(rid >>> 8, false) + (rid & 0xff) * 16L;
        memory.write64(at + 8, ce.hi());
        memory.write64(at, ce.lo());
    }

    void legacyContextRaw(int rid, long lo, long hi) {
        long at = contextTable(rid >>> 8, false) + (rid & 0xff) * 16L;
        memory.write64(at + 8, hi);
        memory.write64(at, lo);
    }

    // ---- scalable structures ----

    /** Sets up a scalable context for {@code rid} with a 1-page PASID directory (PDTS 0: 128 × 64 PASIDs); {@return the directory} */
    long scalableContext(int rid, long flags) {
        long dir = memory.allocateFrame();
        ScalableContextEntry ce = ScalableContextEntry.of(dir, 0, flags);
        long at = contextTable(rid >>> 8, (rid & 0x80) != 0) + (rid & 0x7f) * 32L;
        memory.write64(at + 8, ce.q1());
        memory.write64(at, ce.q0());
        return dir;
    }

    void pasidEntry(long dir, int pasid, PasidEntry pe) {
        long dirSlot = dir + PasidDirEntry.offset(pasid);
        long table = memory.read64(dirSlot) & PasidDirEntry.ADDR_MASK;
        if ((memory.read64(dirSlot) & 1) == 0) {
            table = memory.allocateFrame();
            memory.write64(dirSlot, PasidDirEntry.of(table).raw());
        }
        long at = table + PasidEntry.offset(pasid);
        memory.write64(at + 16, pe.q2());
        memory.write64(at + 8, pe.q1());
        memory.write64(at, pe.q0());
    }

    // ---- invalidation queue ----

    /** Submits descriptors plus a wait descriptor, and checks the wait's status write. */
    void submit(InvDesc... descs) {
        int stride = scalable ? 32 : 16;
        for (InvDesc d : descs) {
            put(d, stride);
        }
        int seq = statusSeq++;
        put(InvDesc.waitStatus(status, seq, true, false), stride);
        unit.write64(VtdRegs.IQT, tail * stride);
        assertThat(unit.read32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE).as("IQE").isZero();
        assertThat(memory.read32(status)).as("wait status").isEqualTo(seq);
        assertThat(unit.read64(VtdRegs.IQH)).isEqualTo(tail * stride);
    }

    /** Submits descriptors without a wait and without checks. */
    void submitRaw(InvDesc... descs) {
        int stride = scalable ? 32 : 16;
        for (InvDesc d : descs) {
            put(d, stride);
        }
        unit.write64(VtdRegs.IQT, tail * stride);
    }

    private void put(InvDesc d, int stride) {
        long at = queue + tail * stride;
        memory.write64(at, d.q0());
        memory.write64(at + 8, d.q1());
        if (stride == 32) {
            memory.write64(at + 16, 0);
            memory.write64(at + 24, 0);
        }
        tail = (tail + 1) % (4096 / stride);
    }

    // ---- faults ----

    /** {@return the pending fault records, clearing them} */
    List<FaultRecord> takeFaults() {
        List<FaultRecord> out = new ArrayList<>();
        int n = unit.config().cap().faultRecordCount();
        for (int i = 0; i < n; i++) {
            int at = VtdRegs.FRCD + i * 16;
            long hi = unit.read64(at + 8);
            if ((hi & FaultRecord.F) != 0) {
                out.add(new FaultRecord(unit.read64(at), hi));
                unit.write32(at + 12, (int) (FaultRecord.F >>> 32));
            }
        }
        unit.write32(VtdRegs.FSTS, VtdRegs.FSTS_PFO);
        return out;
    }

    @Override
    public void close() {
        memory.close();
    }
}
