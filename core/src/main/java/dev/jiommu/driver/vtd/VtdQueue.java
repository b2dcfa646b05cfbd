package dev.jiommu.driver.vtd;

import dev.jiommu.hw.MmioRegisters;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.mem.PhysicalMemory;

import java.util.List;

/**
 * The driver's side of the invalidation queue (Linux's qi_submit_sync): descriptors go in at the
 * tail, each batch ends with a wait descriptor whose status write the driver polls.
 *
 * <p>Thread safety: synchronized; callers' batches never interleave.
 */
final class VtdQueue {
    /** Linux's QI_LENGTH: 256 descriptors. */
    static final int ENTRIES = 256;
    private static final int SPIN_LIMIT = 1 << 20;

    private final MmioRegisters regs;
    private final PhysicalMemory memory;
    private final boolean wide;
    private final int stride;
    private final long base;
    private final long status;
    private int tail;
    private int sequence = 1;
    private long batches;
    private long descriptors;

    VtdQueue(MmioRegisters regs, PhysicalMemory memory, boolean wide) {
        this.regs = regs;
        this.memory = memory;
        this.wide = wide;
        this.stride = wide ? 32 : 16;
        this.base = memory.allocate((long) ENTRIES * stride, 4096);
        this.status = memory.allocateFrame();
    }

    /** {@return IQA for this queue: base, DW, QS} */
    long iqa() {
        int pages = ENTRIES * stride / 4096;
        return base | (wide ? VtdRegs.IQA_DW : 0) | Integer.numberOfTrailingZeros(pages);
    }

    /** Submits {@code descs} and a wait descriptor, and waits for its status write. */
    synchronized void submit(List<InvDesc> descs) {
        submit(descs, false);
    }

    /** As {@link #submit(List)}, the wait descriptor draining page requests when {@code drain}. */
    synchronized void submit(List<InvDesc> descs, boolean drain) {
        if (descs.size() + 1 >= ENTRIES) {
            // Split long batches: the ring holds ENTRIES - 1 descriptors.
            submit(descs.subList(0, ENTRIES / 2), false);
            submit(descs.subList(ENTRIES / 2, descs.size()), drain);
            return;
        }
        waitForSpace(descs.size() + 1);
        for (InvDesc d : descs) {
            put(d);
        }
        int seq = sequence++;
        memory.write32(status, 0);
        put(InvDesc.waitStatus(status, seq, true, drain));
        regs.write64(VtdRegs.IQT, (long) tail * stride);
        for (int spin = 0; memory.read32(status) != seq; spin++) {
            if ((regs.read32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE) != 0) {
                throw new IllegalStateException(String.format("driver bug: invalid descriptor at IQH=0x%x", regs.read64(VtdRegs.IQH)));
            }
            if (spin > SPIN_LIMIT) {
                throw new IllegalStateException("VT-d invalidation wait timed out");
            }
            Thread.onSpinWait();
        }
        batches++;
        descriptors += descs.size() + 1;
    }

    private void waitForSpace(int needed) {
        for (int spin = 0; ; spin++) {
            int head = (int) (regs.read64(VtdRegs.IQH) / stride);
            int free = (head - tail - 1 + ENTRIES) % ENTRIES;
            if (free >= needed) {
                return;
            }
            if (spin > SPIN_LIMIT) {
                throw new IllegalStateException("VT-d invalidation queue full");
            }
            Thread.onSpinWait();
        }
    }

    private void put(InvDesc d) {
        long at = base + (long) tail * stride;
        memory.write64(at, d.q0());
        memory.write64(at + 8, d.q1());
        if (wide) {
            memory.write64(at + 16, 0);
            memory.write64(at + 24, 0);
        }
        tail = (tail + 1) % ENTRIES;
    }

    synchronized long batches() {
        return batches;
    }

    synchronized long descriptors() {
        return descriptors;
    }
}
