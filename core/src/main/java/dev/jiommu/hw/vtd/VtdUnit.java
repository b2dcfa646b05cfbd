package dev.jiommu.hw.vtd;

import dev.jiommu.hw.DeviceEndpoint;
import dev.jiommu.hw.DmaOp;
import dev.jiommu.hw.InterruptLine;
import dev.jiommu.hw.MmioRegisters;
import dev.jiommu.hw.MsiSink;
import dev.jiommu.hw.PageRequestStatus;
import dev.jiommu.hw.PciIommuPort;
import dev.jiommu.hw.UnitLock;
import dev.jiommu.hw.vtd.spec.CapReg;
import dev.jiommu.hw.vtd.spec.EcapReg;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.hw.vtd.spec.FaultReason;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PageRequest;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.mem.BadPhysicalAddressException;
import dev.jiommu.mem.PhysicalMemory;
import dev.jiommu.pt.Access;
import dev.jiommu.pt.PageTableFormat;

import java.util.HashMap;
import java.util.Map;

/**
 * An emulated Intel VT-d remapping unit: the register page (software's only door), the
 * invalidation queue, fault recording, the page request queue, and DMA translation through
 * {@link VtdTranslation} and its caches.
 *
 * <p>Locking: one {@link UnitLock} per unit (not reentrant) guards registers, caches and queues.
 * DMA translates and performs its access under it ({@link dev.jiommu.hw.Translator}): IOTLB hits of
 * the last requester under its shared side (they change nothing, so devices behind one unit do not
 * serialize on them), everything else under its exclusive side, which first waits for every shared
 * holder to leave; interrupts are signalled after it is released. Lock order: unit lock, then an endpoint's own monitor (page
 * responses, device-TLB invalidation).
 */
public final class VtdUnit implements MmioRegisters, InterruptLine, PciIommuPort {
    /* Implementation notes
     *
     * Registers live in a long[] of 512 qwords; 32-bit registers are halves. Actions run on the
     * write that sets them (GCMD commands, CCMD.ICC, IOTLB.IVT, IQT), synchronously: by the time
     * the write returns the command is done, which software observes as "hardware was fast".
     * The invalidation queue is processed on each IQT write, up to the tail or the first invalid
     * descriptor (IQE halts the queue, IQH points at the culprit, until software clears FSTS.IQE
     * and writes IQT again).
     */

    private static final int IRQ_FAULT = 1;
    private static final int IRQ_INVALIDATION = 1 << 1;
    private static final int IRQ_PAGE_REQUEST = 1 << 2;
    private static final int GSTS_RTPS = 1 << 30;
    private static final int GSTS_IRTPS = 1 << 24;
    private static final int GSTS_STATE = VtdRegs.GCMD_TE | VtdRegs.GCMD_QIE | VtdRegs.GCMD_IRE | VtdRegs.GCMD_CFI;

    private final String name;
    private final VtdConfig config;
    private final PhysicalMemory memory;
    private final UnitLock lock = new UnitLock();
    /** Guarded by lock. */
    private final long[] regs = new long[VtdRegs.SIZE_BYTES / 8];
    private final VtdTranslation translation;
    private final Map<Integer, DeviceEndpoint> endpoints = new HashMap<>();
    private volatile MsiSink sink;
    /** Interrupts raised under the lock, signalled after it. Guarded by lock. */
    private int pendingIrqs;
    // Latched state. Guarded by lock.
    private boolean translationEnabled;
    private boolean queueEnabled;
    private long rootTable;
    private boolean scalableRoot;
    private int nextFaultRecord;
    // Counters. Guarded by lock.
    private long faultsRecorded;
    private long faultsSuppressed;
    private long faultsLost;
    private long descriptors;
    private long invalidatedEntries;
    private long pageRequests;
    private long pageResponses;
    private long queueErrors;

    public VtdUnit(String name, VtdConfig config, PhysicalMemory memory) {
        this.name = name;
        this.config = config;
        this.memory = memory;
        this.translation = new VtdTranslation(memory, config);
        set64(VtdRegs.VER, 0x10);
        set64(VtdRegs.CAP, config.cap().raw());
        set64(VtdRegs.ECAP, config.ecap().raw());
        set32(VtdRegs.FECTL, VtdRegs.CTL_IM);
        set32(VtdRegs.IECTL, VtdRegs.CTL_IM);
        set32(VtdRegs.PECTL, VtdRegs.CTL_IM);
    }

    public String name() {
        return name;
    }

    public VtdConfig config() {
        return config;
    }

    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public void connect(MsiSink sink) {
        this.sink = sink;
    }

    @Override
    public void attachEndpoint(int requesterId, DeviceEndpoint endpoint) {
        lock.lock();
        try {
            endpoints.put(requesterId, endpoint);
        } finally {
            unlock();
        }
    }

    // ---- register access ----------------------------------------------------------------------

    private long get64(int offset) {
        return regs[offset >>> 3];
    }

    private void set64(int offset, long value) {
        regs[offset >>> 3] = value;
    }

    private int get32(int offset) {
        return (int) (regs[offset >>> 3] >>> ((offset & 4) * 8));
    }

    private void set32(int offset, int value) {
        int shift = (offset & 4) * 8;
        regs[offset >>> 3] = (regs[offset >>> 3] & ~(0xffff_ffffL << shift)) | ((value & 0xffff_ffffL) << shift);
    }

    private static void checkOffset(int offset, int size) {
        if (offset < 0 || offset + size > VtdRegs.SIZE_BYTES || (offset & (size - 1)) != 0) {
            throw new IllegalArgumentException(String.format("VT-d register access of %d bytes at 0x%x", size, offset));
        }
    }

    @Override
    public int read32(int offset) {
        checkOffset(offset, 4);
        lock.lock();
        try {
            return get32(offset);
        } finally {
            unlock();
        }
    }

    @Override
    public long read64(int offset) {
        checkOffset(offset, 8);
        lock.lock();
        try {
            return get64(offset);
        } finally {
            unlock();
        }
    }

    @Override
    public void write32(int offset, int value) {
        checkOffset(offset, 4);
        lock.lock();
        try {
            if (is64BitRegister(offset & ~7)) {
                int base = offset & ~7;
                long old = get64(base);
                int shift = (offset & 4) * 8;
                long merged = (old & ~(0xffff_ffffL << shift)) | ((value & 0xffff_ffffL) << shift);
                write64Locked(base, merged, old);
            } else {
                write32Locked(offset, value);
            }
        } finally {
            unlock();
        }
    }

    @Override
    public void write64(int offset, long value) {
        checkOffset(offset, 8);
        lock.lock();
        try {
            if (is64BitRegister(offset)) {
                write64Locked(offset, value, get64(offset));
            } else {
                write32Locked(offset, (int) value);
                write32Locked(offset + 4, (int) (value >>> 32));
            }
        } finally {
            unlock();
        }
    }

    private static boolean is64BitRegister(int offset) {
        return switch (offset) {
            case VtdRegs.VER, VtdRegs.CAP, VtdRegs.ECAP, VtdRegs.RTADDR, VtdRegs.CCMD, VtdRegs.IQH, VtdRegs.IQT, VtdRegs.IQA, VtdRegs.IQER,
                 VtdRegs.IRTA, VtdRegs.PQH, VtdRegs.PQT, VtdRegs.PQA, VtdRegs.IVA, VtdRegs.IOTLB -> true;
            default -> offset >= VtdRegs.FRCD && offset < VtdRegs.FRCD + 16 * 8;
        };
    }

    private void write32Locked(int offset, int value) {
        switch (offset) {
            case VtdRegs.GCMD -> gcmd(value);
            case VtdRegs.GSTS -> {
                // read-only
            }
            case VtdRegs.FSTS -> {
                int rw1c = VtdRegs.FSTS_PFO | VtdRegs.FSTS_IQE | VtdRegs.FSTS_ICE | VtdRegs.FSTS_ITE | VtdRegs.FSTS_PRO;
                set32(VtdRegs.FSTS, get32(VtdRegs.FSTS) & ~(value & rw1c));
            }
            case VtdRegs.FECTL -> control(VtdRegs.FECTL, value, IRQ_FAULT);
            case VtdRegs.IECTL -> control(VtdRegs.IECTL, value, IRQ_INVALIDATION);
            case VtdRegs.PECTL -> control(VtdRegs.PECTL, value, IRQ_PAGE_REQUEST);
            case VtdRegs.ICS -> set32(VtdRegs.ICS, get32(VtdRegs.ICS) & ~(value & VtdRegs.ICS_IWC));
            case VtdRegs.PRS -> set32(VtdRegs.PRS, get32(VtdRegs.PRS) & ~(value & (VtdRegs.PRS_PPR | VtdRegs.PRS_PRO)));
            default -> set32(offset, value);
        }
    }

    private void write64Locked(int offset, long value, long old) {
        switch (offset) {
            case VtdRegs.VER, VtdRegs.CAP, VtdRegs.ECAP, VtdRegs.IQH, VtdRegs.IQER -> {
                // read-only (IQH moves only by hardware)
            }
            case VtdRegs.CCMD -> {
                if ((value & VtdRegs.CCMD_ICC) != 0) {
                    int cirg = (int) (value >>> VtdRegs.CCMD_CIRG_SHIFT) & 3;
                    invalidatedEntries += translation.invalidateContext(cirg, (int) value & 0xffff, (int) (value >>> 16) & 0xffff,
                            (int) (value >>> 32) & 3);
                    value = (value & ~(VtdRegs.CCMD_ICC | (3L << VtdRegs.CCMD_CAIG_SHIFT))) | ((long) cirg << VtdRegs.CCMD_CAIG_SHIFT);
                }
                set64(offset, value);
            }
            case VtdRegs.IOTLB -> {
                if ((value & VtdRegs.IOTLB_IVT) != 0) {
                    int iirg = (int) (value >>> VtdRegs.IOTLB_IIRG_SHIFT) & 3;
                    long iva = get64(VtdRegs.IVA);
                    invalidatedEntries += translation.invalidateIotlb(iirg, (int) (value >>> VtdRegs.IOTLB_DID_SHIFT) & 0xffff,
                            iva & ~0xfffL, (int) iva & 0x3f);
                    value = (value & ~(VtdRegs.IOTLB_IVT | (3L << VtdRegs.IOTLB_IAIG_SHIFT))) | ((long) iirg << VtdRegs.IOTLB_IAIG_SHIFT);
                }
                set64(offset, value);
            }
            case VtdRegs.IQT -> {
                set64(offset, value);
                processQueue();
            }
            default -> {
                if (offset >= VtdRegs.FRCD && offset < VtdRegs.FRCD + 16 * config.cap().faultRecordCount() && (offset & 8) != 0) {
                    // FRCD high qword: F (bit 63) is write-1-to-clear, the rest read-only.
                    if ((value & FaultRecord.F) != 0) {
                        set64(offset, old & ~FaultRecord.F);
                        updatePendingFaults();
                    }
                } else if (offset >= VtdRegs.FRCD && offset < VtdRegs.FRCD + 16 * 8) {
                    // FRCD low qwords are read-only.
                } else {
                    set64(offset, value);
                }
            }
        }
    }

    private void gcmd(int value) {
        int status = get32(VtdRegs.GSTS);
        if ((value & VtdRegs.GCMD_SRTP) != 0) {
            long rtaddr = get64(VtdRegs.RTADDR);
            rootTable = rtaddr & ~0xfffL;
            scalableRoot = (rtaddr & VtdRegs.RTADDR_SMT) != 0 && config.ecap().scalableMode();
            status |= GSTS_RTPS;
            if ((config.cap().raw() & CapReg.ESRTPS) != 0) {
                translation.clearAll();
            }
        }
        if ((value & VtdRegs.GCMD_SIRTP) != 0) {
            status |= GSTS_IRTPS;
        }
        boolean qie = (value & VtdRegs.GCMD_QIE) != 0 && config.ecap().queuedInvalidation();
        if (qie && !queueEnabled) {
            set64(VtdRegs.IQH, 0);
        }
        queueEnabled = qie;
        translationEnabled = (value & VtdRegs.GCMD_TE) != 0;
        int state = value & GSTS_STATE;
        if (!qie) {
            state &= ~VtdRegs.GCMD_QIE;
        }
        set32(VtdRegs.GSTS, (status & ~GSTS_STATE) | state);
    }

    private void control(int offset, int value, int irq) {
        int old = get32(offset);
        int updated = (old & ~VtdRegs.CTL_IM) | (value & VtdRegs.CTL_IM);
        if ((updated & VtdRegs.CTL_IM) == 0 && (updated & VtdRegs.CTL_IP) != 0) {
            updated &= ~VtdRegs.CTL_IP;
            pendingIrqs |= irq;
        }
        set32(offset, updated);
    }

    /** Raises an interrupt: signalled after the lock is released, or latched as IP while masked. */
    private void raise(int ctlOffset, int irq) {
        int ctl = get32(ctlOffset);
        if ((ctl & VtdRegs.CTL_IM) != 0) {
            set32(ctlOffset, ctl | VtdRegs.CTL_IP);
        } else {
            pendingIrqs |= irq;
        }
    }

    private void unlock() {
        if (pendingIrqs == 0) {
            lock.unlock();
            return;
        }
        int irqs = pendingIrqs;
        pendingIrqs = 0;
        int feData = get32(VtdRegs.FEDATA);
        int feAddr = get32(VtdRegs.FEADDR);
        int ieData = get32(VtdRegs.IEDATA);
        int ieAddr = get32(VtdRegs.IEADDR);
        int peData = get32(VtdRegs.PEDATA);
        int peAddr = get32(VtdRegs.PEADDR);
        lock.unlock();
        MsiSink s = sink;
        if (s == null) {
            return;
        }
        if ((irqs & IRQ_FAULT) != 0) {
            s.signal(feAddr & 0xffff_ffffL, feData);
        }
        if ((irqs & IRQ_INVALIDATION) != 0) {
            s.signal(ieAddr & 0xffff_ffffL, ieData);
        }
        if ((irqs & IRQ_PAGE_REQUEST) != 0) {
            s.signal(peAddr & 0xffff_ffffL, peData);
        }
    }

    // ---- invalidation queue -------------------------------------------------------------------

    private void processQueue() {
        if (!queueEnabled || (get32(VtdRegs.FSTS) & VtdRegs.FSTS_IQE) != 0) {
            return;
        }
        long iqa = get64(VtdRegs.IQA);
        long base = iqa & ~0xfffL;
        boolean wide = (iqa & VtdRegs.IQA_DW) != 0;
        int shift = wide ? 5 : 4;
        long entries = (4096L << (iqa & 7)) >>> shift;
        long head = get64(VtdRegs.IQH) >>> shift;
        long tail = (get64(VtdRegs.IQT) >>> shift) % entries;
        while (head != tail) {
            long at = base + (head << shift);
            long q0;
            long q1;
            try {
                q0 = memory.read64(at);
                q1 = memory.read64(at + 8);
            } catch (BadPhysicalAddressException e) {
                queueError(head << shift);
                return;
            }
            if (!execute(q0, q1)) {
                queueError(head << shift);
                return;
            }
            descriptors++;
            head = (head + 1) % entries;
        }
        set64(VtdRegs.IQH, head << shift);
    }

    private void queueError(long headOffset) {
        set64(VtdRegs.IQH, headOffset);
        set64(VtdRegs.IQER, (get64(VtdRegs.IQER) & ~0xfL) | 1); // IQEI 1: invalid descriptor or address
        set32(VtdRegs.FSTS, get32(VtdRegs.FSTS) | VtdRegs.FSTS_IQE);
        queueErrors++;
        raise(VtdRegs.FECTL, IRQ_FAULT);
    }

    /** Runs one descriptor; {@return false when it is invalid (IQE)} */
    private boolean execute(long q0, long q1) {
        InvDesc d = new InvDesc(q0, q1);
        CapReg cap = config.cap();
        EcapReg ecap = config.ecap();
        switch (d.type()) {
            case InvDesc.TYPE_CONTEXT -> {
                if (d.granularity() == 0) {
                    return false;
                }
                invalidatedEntries += translation.invalidateContext(d.granularity(), d.did(), d.sid(), (int) (q0 >>> 48) & 3);
            }
            case InvDesc.TYPE_IOTLB -> {
                int g = d.granularity();
                if (g == 0 || g == InvDesc.G_DEVICE_OR_PAGE && (!cap.pageSelectiveInvalidation() || d.addressMask() > cap.mamv())) {
                    return false;
                }
                invalidatedEntries += translation.invalidateIotlb(g, d.did(), d.address(), d.addressMask());
            }
            case InvDesc.TYPE_PASID_IOTLB -> {
                int g = d.granularity();
                if (g != InvDesc.PG_PASID && g != InvDesc.PG_PAGE || g == InvDesc.PG_PAGE && d.addressMask() > cap.mamv()) {
                    return false;
                }
                invalidatedEntries += translation.invalidatePasidIotlb(g, d.did(), d.pasid(), d.address(), d.addressMask());
            }
            case InvDesc.TYPE_PASID_CACHE -> {
                if (d.granularity() == 2) {
                    return false;
                }
                invalidatedEntries += translation.invalidatePasidCache(d.granularity(), d.did(), d.pasid());
            }
            case InvDesc.TYPE_DEVICE_TLB, InvDesc.TYPE_PASID_DEVICE_TLB -> {
                if (!ecap.has(EcapReg.DT)) {
                    return false;
                }
                boolean pasidBased = d.type() == InvDesc.TYPE_PASID_DEVICE_TLB;
                DeviceEndpoint ep = endpoints.get(pasidBased ? d.pasidDeviceTlbSid() : d.sid());
                if (ep != null) {
                    long[] range = d.deviceTlbRange();
                    int pasid = !pasidBased ? NO_PASID : d.globalPasids() ? DeviceEndpoint.ALL_PASIDS : d.pasid();
                    ep.atcInvalidate(pasid, range[0], range[1]);
                }
            }
            case InvDesc.TYPE_IEC -> {
                // Interrupt remapping is not modelled; the descriptor is accepted.
            }
            case InvDesc.TYPE_WAIT -> {
                // Descriptors run synchronously, so the fence (FN) and page-request drain (PD) hold
                // by construction: every page request received before this point is in the queue.
                if ((q0 & InvDesc.WAIT_SW) != 0) {
                    try {
                        memory.write32(d.statusAddress(), d.statusData());
                    } catch (BadPhysicalAddressException e) {
                        return false;
                    }
                }
                if ((q0 & InvDesc.WAIT_IF) != 0) {
                    set32(VtdRegs.ICS, get32(VtdRegs.ICS) | VtdRegs.ICS_IWC);
                    raise(VtdRegs.IECTL, IRQ_INVALIDATION);
                }
            }
            case InvDesc.TYPE_PAGE_GROUP_RESPONSE -> {
                if (!ecap.has(EcapReg.PRS)) {
                    return false;
                }
                pageResponses++;
                DeviceEndpoint ep = endpoints.get(d.responseRid());
                if (ep != null) {
                    ep.pageResponse(d.responsePasidPresent() ? d.pasid() : NO_PASID, d.prgIndex(), d.responseCode());
                }
            }
            default -> {
                return false;
            }
        }
        return true;
    }

    // ---- fault recording ----------------------------------------------------------------------

    private void recordFault(int sid, int pasid, long address, int reason, boolean read, boolean suppressed) {
        if (suppressed) {
            faultsSuppressed++;
            return;
        }
        int index = nextFaultRecord;
        int at = VtdRegs.FRCD + index * FaultRecord.SIZE_BYTES;
        if ((get64(at + 8) & FaultRecord.F) != 0) {
            set32(VtdRegs.FSTS, get32(VtdRegs.FSTS) | VtdRegs.FSTS_PFO);
            faultsLost++;
            return;
        }
        FaultRecord record = FaultRecord.of(sid, pasid, address, FaultReason.of(reason), read);
        // FaultRecord.of maps unknown codes to UNKNOWN; keep the raw code in FR.
        long hi = (record.hi() & ~(0xffL << 32)) | ((long) (reason & 0xff) << 32);
        set64(at, record.lo());
        set64(at + 8, hi);
        nextFaultRecord = (index + 1) % config.cap().faultRecordCount();
        faultsRecorded++;
        boolean wasPending = (get32(VtdRegs.FSTS) & VtdRegs.FSTS_PPF) != 0;
        updatePendingFaults();
        if (!wasPending) {
            raise(VtdRegs.FECTL, IRQ_FAULT);
        }
    }

    private void updatePendingFaults() {
        int fsts = get32(VtdRegs.FSTS) & ~(VtdRegs.FSTS_PPF | (0xff << VtdRegs.FSTS_FRI_SHIFT));
        int n = config.cap().faultRecordCount();
        for (int i = 0; i < n; i++) {
            int index = (nextFaultRecord + i) % n;
            if ((get64(VtdRegs.FRCD + index * FaultRecord.SIZE_BYTES + 8) & FaultRecord.F) != 0) {
                fsts |= VtdRegs.FSTS_PPF | (index << VtdRegs.FSTS_FRI_SHIFT);
                break;
            }
        }
        set32(VtdRegs.FSTS, fsts);
    }

    // ---- DMA ----------------------------------------------------------------------------------

    /** Translates one request under the lock, recording a fault; {@return 0 or the fault reason} */
    private int translateLocked(int requesterId, int pasid, long iova, int access, boolean record) {
        if (!translationEnabled) {
            translation.pa = iova;
            translation.bytesLeftInPage = Long.MAX_VALUE;
            translation.perms = PageTableFormat.PERM_ALL;
            translation.ctx = null;
            return 0;
        }
        int r = translation.translate(rootTable, scalableRoot, requesterId, pasid, iova, access);
        if (r != 0 && record) {
            recordFault(requesterId, translation.faultPasid, iova, r, (access & Access.WRITE) == 0, translation.fpd);
        }
        return r;
    }

    /**
     * Translates one request the way {@link #dma} does (recording a fault), without the access;
     * {@return the physical address, or the negated fault reason}
     */
    public long translate(int requesterId, int pasid, long iova, int access) {
        // A hit reads only, as in dma: under the shared side, which here only counts it.
        long epoch = lock.readEpoch();
        VtdTranslation.IotlbEntry e = (epoch & 1) == 0 && translationEnabled
                ? translation.sharedHit(requesterId, pasid, iova, access) : null;
        if (e != null) {
            int slot = lock.tryReadLock(epoch);
            if (slot >= 0) {
                lock.countReadHit(slot);
                lock.readUnlock(slot);
                return e.paBase + (iova - e.iovaBase);
            }
        }
        lock.lock();
        try {
            int r = translateLocked(requesterId, pasid, iova, access, true);
            return r == 0 ? translation.pa : -r;
        } finally {
            unlock();
        }
    }

    @Override
    public int dma(int requesterId, int pasid, long iova, long lengthBytes, int access, DmaOp op) {
        long done = 0;
        // The hit path, under the lock's shared side: IOTLB hits change nothing, so devices
        // behind one unit run them together. An invalidation takes the exclusive side, which
        // waits for this to leave, so no access here uses an entry it dropped once it completes.
        // The first page is looked up before the shared side is taken, so the probe overlaps the
        // slot's compare-and-set; tryReadLock(epoch) fails if an exclusive holder came or went
        // since, and then the lookup, which may have raced its changes, is thrown away.
        long epoch = lock.readEpoch();
        VtdTranslation.IotlbEntry first = (epoch & 1) == 0 && translationEnabled
                ? translation.sharedHit(requesterId, pasid, iova, access) : null;
        if (first != null) {
            int slot = lock.tryReadLock(epoch);
            if (slot >= 0) {
                try {
                    done = dmaHits(slot, first, requesterId, pasid, iova, lengthBytes, access, op);
                } finally {
                    lock.readUnlock(slot);
                }
                if (done == lengthBytes) {
                    return OK;
                }
            }
        }
        lock.lock();
        try {
            return dmaLocked(requesterId, pasid, iova, lengthBytes, done, access, op);
        } finally {
            unlock();
        }
    }

    /**
     * Performs the request from its start, whose first page hits {@code first}, while every page
     * hits the IOTLB, reading only; {@return the bytes performed} (up to the first page that needs
     * the full translation, whose pieces before it are already performed). Counts its hits in the
     * shared side's slot.
     */
    private long dmaHits(int slot, VtdTranslation.IotlbEntry first, int requesterId, int pasid, long iova, long lengthBytes, int access,
            DmaOp op) {
        long done = 0;
        long pieceOffset = 0;
        long piecePa = 0;
        long pieceBytes = 0;
        VtdTranslation.IotlbEntry e = first;
        while (true) {
            lock.countReadHit(slot);
            long at = iova + done;
            long offset = at - e.iovaBase;
            long pa = e.paBase + offset;
            // For a 4 KiB leaf the next address comes from this one alone, not from the entry's
            // fields, so the CPU can start the next page's IOTLB probe before this one's loads
            // return (the probes miss the L1 after a burst's copy).
            long n = Math.min(lengthBytes - done, e.shift == 12 ? 4096 - (at & 0xfff) : (1L << e.shift) - offset);
            if (pieceBytes > 0 && pa == piecePa + pieceBytes) {
                pieceBytes += n;
            } else {
                if (pieceBytes > 0) {
                    op.access(piecePa, pieceOffset, pieceBytes);
                }
                pieceOffset = done;
                piecePa = pa;
                pieceBytes = n;
            }
            done += n;
            if (done >= lengthBytes) {
                break;
            }
            e = translation.sharedHit(requesterId, pasid, iova + done, access);
            if (e == null) {
                break;
            }
        }
        op.access(piecePa, pieceOffset, pieceBytes);
        return done;
    }

    /** {@link #dma} from {@code done} bytes into the request on, under the lock. */
    private int dmaLocked(int requesterId, int pasid, long iova, long lengthBytes, long done, int access, DmaOp op) {
        // Every page is translated (and may fault) on its own; pages that land physically
        // contiguous go to the device's access as one piece, as a DMA engine bursts them.
        long pieceOffset = 0;
        long piecePa = 0;
        long pieceBytes = 0;
        while (done < lengthBytes) {
            int r = translateLocked(requesterId, pasid, iova + done, access, true);
            if (r != 0) {
                if (pieceBytes > 0) {
                    op.access(piecePa, pieceOffset, pieceBytes);
                }
                return r;
            }
            long n = Math.min(lengthBytes - done, translation.bytesLeftInPage);
            if (pieceBytes > 0 && translation.pa == piecePa + pieceBytes) {
                pieceBytes += n;
            } else {
                if (pieceBytes > 0) {
                    op.access(piecePa, pieceOffset, pieceBytes);
                }
                pieceOffset = done;
                piecePa = translation.pa;
                pieceBytes = n;
            }
            done += n;
        }
        if (pieceBytes > 0) {
            op.access(piecePa, pieceOffset, pieceBytes);
        }
        return OK;
    }

    /**
     * A DMA of a device with a device-TLB (ATS): each page is looked up in the endpoint's TLB, and
     * on a miss translated by a translation request (whose failure is returned, not recorded, as a
     * translation completion carries it) and cached there; the access then goes out as a translated
     * request. All of it under the unit lock, so device-TLB invalidations never interleave.
     *
     * @return 0, or the fault reason of the failed translation request
     */
    @Override
    public int atsDma(int requesterId, int pasid, long iova, long lengthBytes, int access, DeviceEndpoint endpoint, DmaOp op) {
        lock.lock();
        try {
            long done = 0;
            while (done < lengthBytes) {
                long at = iova + done;
                long pa = endpoint.atcLookup(pasid, at, access);
                if (pa < 0) {
                    int r = translateLocked(requesterId, pasid, at & ~0xfffL, access, false);
                    if (r == 0 && translation.ctx != null && !translation.ctx.deviceTlbAllowed()) {
                        r = translation.ctx.scalable ? FaultReason.SM_DTE_CLEAR.code() : FaultReason.TRANSLATION_TYPE_BLOCKED.code();
                    }
                    if (r != 0) {
                        return r;
                    }
                    endpoint.atcFill(pasid, at & ~0xfffL, translation.pa, translation.perms);
                    pa = translation.pa + (at & 0xfff);
                }
                long n = Math.min(lengthBytes - done, 4096 - (at & 0xfff));
                op.access(pa, done, n);
                done += n;
            }
            return OK;
        } finally {
            unlock();
        }
    }

    // ---- page requests ------------------------------------------------------------------------

    /**
     * A PCIe page request message from {@code requesterId}: written to the page request queue at
     * PQT, with PRS.PPR set and the page request interrupt raised.
     */
    @Override
    public PageRequestStatus pageRequest(int requesterId, int pasid, long address, boolean read, boolean write, boolean last, int prgIndex) {
        lock.lock();
        try {
            if (!config.ecap().has(EcapReg.PRS) || !scalableRoot) {
                return PageRequestStatus.REFUSED;
            }
            VtdTranslation.Ctx ctx = translation.context(rootTable, true, requesterId);
            if (ctx == null || !ctx.pre) {
                recordFault(requesterId, pasid, address, FaultReason.SM_PRE_CLEAR.code(), !write, ctx != null && ctx.fpd);
                return PageRequestStatus.REFUSED;
            }
            long pqa = get64(VtdRegs.PQA);
            long entries = (4096L << (pqa & 7)) / PageRequest.SIZE_BYTES;
            long head = (get64(VtdRegs.PQH) >>> 5) % entries;
            long tail = (get64(VtdRegs.PQT) >>> 5) % entries;
            if ((pqa & ~0xfffL) == 0 || (tail + 1) % entries == head) {
                set32(VtdRegs.PRS, get32(VtdRegs.PRS) | VtdRegs.PRS_PRO);
                if (last) {
                    DeviceEndpoint ep = endpoints.get(requesterId);
                    if (ep != null) {
                        ep.pageResponse(pasid, prgIndex, InvDesc.RESPONSE_SUCCESS);
                    }
                }
                return PageRequestStatus.OVERFLOW;
            }
            PageRequest pr = PageRequest.of(requesterId, pasid, address, read, write, last, prgIndex);
            long at = (pqa & ~0xfffL) + tail * PageRequest.SIZE_BYTES;
            memory.write64(at, pr.q0());
            memory.write64(at + 8, pr.q1());
            memory.write64(at + 16, 0);
            memory.write64(at + 24, 0);
            set64(VtdRegs.PQT, ((tail + 1) % entries) << 5);
            pageRequests++;
            set32(VtdRegs.PRS, get32(VtdRegs.PRS) | VtdRegs.PRS_PPR);
            raise(VtdRegs.PECTL, IRQ_PAGE_REQUEST);
            return PageRequestStatus.QUEUED;
        } finally {
            unlock();
        }
    }

    // ---- observation --------------------------------------------------------------------------

    public VtdStats stats() {
        lock.lock();
        try {
            VtdTranslation t = translation;
            // Hits on the shared side are last-requester IOTLB hits, counted in the lock's slots.
            long sharedHits = lock.readHits();
            long memo = t.lastRequesterHits + sharedHits;
            long pasidMemo = scalableRoot ? memo : 0;
            return new VtdStats(t.iotlbHits + sharedHits, t.iotlbMisses, t.iotlb.size(), t.iotlb.evictions(), t.contextCache.hits() + memo,
                    t.contextCache.misses(), t.pasidCache.hits() + pasidMemo, t.pasidCache.misses(), t.walks, t.tableReads, faultsRecorded,
                    faultsSuppressed, faultsLost, descriptors, invalidatedEntries, pageRequests, pageResponses, queueErrors,
                    t.nestedWalkCacheHits);
        } finally {
            unlock();
        }
    }

    /** {@return the number of IOTLB entries cached now} */
    public int iotlbSize() {
        lock.lock();
        try {
            return translation.iotlb.size();
        } finally {
            unlock();
        }
    }

    @Override
    public String toString() {
        return "VtdUnit[" + name + "]";
    }
}
