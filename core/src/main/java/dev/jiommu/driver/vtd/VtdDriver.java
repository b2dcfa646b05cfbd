package dev.jiommu.driver.vtd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.hw.InterruptLine;
import dev.jiommu.hw.MmioRegisters;
import dev.jiommu.hw.PciRequesterId;
import dev.jiommu.hw.vtd.spec.CapReg;
import dev.jiommu.hw.vtd.spec.ContextEntry;
import dev.jiommu.hw.vtd.spec.EcapReg;
import dev.jiommu.hw.vtd.spec.FaultRecord;
import dev.jiommu.hw.vtd.spec.InvDesc;
import dev.jiommu.hw.vtd.spec.PageRequest;
import dev.jiommu.hw.vtd.spec.PasidDirEntry;
import dev.jiommu.hw.vtd.spec.PasidEntry;
import dev.jiommu.hw.vtd.spec.RootEntry;
import dev.jiommu.hw.vtd.spec.ScalableContextEntry;
import dev.jiommu.hw.vtd.spec.VtdRegs;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDomain;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.IommuViommu;
import dev.jiommu.iommu.IopfSink;
import dev.jiommu.iommu.PageFault;
import dev.jiommu.iommu.MmioRegistrar;
import dev.jiommu.iommu.PagingDomainFlags;
import dev.jiommu.iommu.hwinfo.VtdHwInfo;
import dev.jiommu.mem.PhysicalMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The VT-d host driver (Linux's drivers/iommu/intel): boots a remapping unit through its registers
 * and tables the way Linux does, and implements the iommufd driver SPI on it. It sees the unit only
 * through {@link MmioRegisters}, {@link InterruptLine} and {@link PhysicalMemory}, so the same code
 * drives the host's emulated unit and, later, a guest's virtual one.
 *
 * <p>Thread safety: the SPI methods and the flushes are synchronized on the driver; fault and
 * page-request interrupts are handled under their own locks.
 */
public final class VtdDriver implements IommuDriver {
    /* Implementation notes
     *
     * Scalable mode is used whenever ECAP.SMTS says so (Linux's default since 5.x builds with
     * CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON); otherwise legacy context entries. Domain ids
     * start at 2: 0 is reserved and 1 is Linux's FLPT_DEFAULT_DID.
     *
     * Invalidation after a change of a present entry follows Linux: a context entry -> context
     * cache (device) + IOTLB (domain) + device-TLB; a PASID entry -> PASID cache (PASID) + IOTLB
     * (domain, or PASID-based for first-stage kinds) + device-TLB; an unmap -> page-selective IOTLB
     * (DSI past CAP.MAMV), with nested children flushed by their own DIDs. A not-present -> present
     * change needs nothing unless CAP.CM (caching mode), which then flushes after every map too.
     */

    /** Driver options. */
    public record Options(boolean preferFirstStage) {
        public static final Options DEFAULT = new Options(false);
    }

    /** Where a domain is attached: a device's RID ({@link IommuDriver#NO_PASID}) or one of its PASIDs. */
    record Attachment(VtdDevice device, int pasid) {
    }

    static final int MSI_ADDRESS = 0xfee0_0000;
    static final int FAULT_VECTOR = 0x30;
    static final int PAGE_REQUEST_VECTOR = 0x31;
    /** Linux's PRQ_ORDER: a 64 KiB page request queue. */
    static final int PRQ_ORDER = 4;

    private final String name;
    private final MmioRegisters regs;
    private final PhysicalMemory memory;
    private final Options options;
    private final CapReg cap;
    private final EcapReg ecap;
    private final boolean scalable;
    private final VtdQueue queue;
    private final long rootTable;
    private final long prq;
    private int gcmd;
    private int nextDid = 2;
    /** What each device has attached, by PASID (NO_PASID for the RID). Guarded by this. */
    private final Map<VtdDevice, Map<Integer, IommuDomain>> attached = new HashMap<>();
    private final Map<Integer, VtdDevice> devices = new HashMap<>();
    /** Where each device's page requests go. */
    private final Map<VtdDevice, IopfSink> sinks = new ConcurrentHashMap<>();
    /** Page requests of groups whose last request has not come yet, by (rid, PRG index). Guarded by prqLock. */
    private final Map<Long, List<PageFault>> partialGroups = new HashMap<>();
    private final Object prqLock = new Object();
    private long pageRequests;
    private long pageResponses;
    /** Fault records read from the unit, oldest first (Linux prints them; tests read them). Guarded by faultLog. */
    private final List<FaultRecord> faultLog = new ArrayList<>();

    public VtdDriver(String name, MmioRegisters regs, PhysicalMemory memory, InterruptLine irq) {
        this(name, regs, memory, irq, Options.DEFAULT);
    }

    public VtdDriver(String name, MmioRegisters regs, PhysicalMemory memory, InterruptLine irq, Options options) {
        this.name = name;
        this.regs = regs;
        this.memory = memory;
        this.options = options;
        this.cap = new CapReg(regs.read64(VtdRegs.CAP));
        this.ecap = new EcapReg(regs.read64(VtdRegs.ECAP));
        if (!ecap.queuedInvalidation()) {
            throw new IllegalStateException(name + ": register-based invalidation only; this driver needs ECAP.QI");
        }
        this.scalable = ecap.scalableMode();
        this.rootTable = memory.allocateFrame();
        this.queue = new VtdQueue(regs, memory, scalable);
        this.prq = scalable && ecap.has(EcapReg.PRS) ? memory.allocate(4096L << PRQ_ORDER, 4096L << PRQ_ORDER) : 0;
        irq.connect((address, data) -> {
            if (data == FAULT_VECTOR) {
                handleFaults();
            } else if (data == PAGE_REQUEST_VECTOR) {
                handlePageRequests();
            }
        });
        boot();
    }

    /** The bring-up of intel_iommu_init/init_dmars, in its order. */
    private void boot() {
        // Root table (iommu_set_root_entry): RTADDR, then SRTP and wait for RTPS.
        regs.write64(VtdRegs.RTADDR, rootTable | (scalable ? VtdRegs.RTADDR_SMT : 0));
        regs.write32(VtdRegs.GCMD, gcmd | VtdRegs.GCMD_SRTP);
        waitStatus(1 << 30, true);
        // Queued invalidation (dmar_enable_qi).
        regs.write64(VtdRegs.IQT, 0);
        regs.write64(VtdRegs.IQA, queue.iqa());
        gcmd |= VtdRegs.GCMD_QIE;
        regs.write32(VtdRegs.GCMD, gcmd);
        waitStatus(VtdRegs.GCMD_QIE, true);
        // Caches may hold anything the firmware left: flush them all.
        List<InvDesc> flush = new ArrayList<>();
        flush.add(InvDesc.contextCache(InvDesc.G_GLOBAL, 0, 0, 0));
        if (scalable) {
            flush.add(InvDesc.pasidCache(InvDesc.PCG_GLOBAL, 0, 0));
        }
        flush.add(InvDesc.iotlb(InvDesc.G_GLOBAL, 0, 0, 0, false));
        queue.submit(flush);
        // Fault reporting (dmar_set_interrupt): program the MSI, unmask.
        regs.write32(VtdRegs.FEDATA, FAULT_VECTOR);
        regs.write32(VtdRegs.FEADDR, MSI_ADDRESS);
        regs.write32(VtdRegs.FEUADDR, 0);
        regs.write32(VtdRegs.FECTL, 0);
        // Page request queue (intel_iommu_enable_prq).
        if (prq != 0) {
            regs.write64(VtdRegs.PQH, 0);
            regs.write64(VtdRegs.PQT, 0);
            regs.write64(VtdRegs.PQA, prq | PRQ_ORDER);
            regs.write32(VtdRegs.PEDATA, PAGE_REQUEST_VECTOR);
            regs.write32(VtdRegs.PEADDR, MSI_ADDRESS);
            regs.write32(VtdRegs.PECTL, 0);
        }
        // Translation on (iommu_enable_translation).
        gcmd |= VtdRegs.GCMD_TE;
        regs.write32(VtdRegs.GCMD, gcmd);
        waitStatus(VtdRegs.GCMD_TE, true);
    }

    private void waitStatus(int bit, boolean set) {
        for (int spin = 0; ((regs.read32(VtdRegs.GSTS) & bit) != 0) != set; spin++) {
            if (spin > 1 << 20) {
                throw new IllegalStateException(String.format("%s: GSTS bit 0x%x did not follow GCMD", name, bit));
            }
            Thread.onSpinWait();
        }
    }

    @Override
    public String name() {
        return "intel-iommu";
    }

    public String unitName() {
        return name;
    }

    public boolean scalableMode() {
        return scalable;
    }

    public CapReg cap() {
        return cap;
    }

    public EcapReg ecap() {
        return ecap;
    }

    boolean dirtyTrackingSupported() {
        return scalable && ecap.dirtyTracking();
    }

    boolean snoopControl() {
        return ecap.has(EcapReg.SC);
    }

    private boolean cachingMode() {
        return cap.cachingMode();
    }

    // ---- devices ------------------------------------------------------------------------------

    /**
     * Probes the PCI device at {@code rid} (Linux's probe_device): in scalable mode it gets a PASID
     * directory and a context entry now, with DMA blocked until something is attached.
     *
     * @param pasidBits the device's PASID capability width (0: none)
     */
    public synchronized VtdDevice probe(PciRequesterId rid, int pasidBits, boolean ats, boolean pri) {
        if (devices.containsKey(rid.rid())) {
            throw new IllegalArgumentException(rid + " is already probed");
        }
        int bits = scalable ? Math.min(pasidBits, ecap.pasidBits()) : 0;
        boolean useAts = ats && ecap.has(EcapReg.DT);
        boolean usePri = pri && useAts && prq != 0;
        long dir = 0;
        int pdts = 0;
        if (scalable) {
            // One directory entry per 64 PASIDs, at least one page (PDTS 2: 512 entries), as intel_pasid_alloc_table.
            long entries = Math.max(512, (1L << bits) >>> 6);
            dir = memory.allocate(entries * PasidDirEntry.SIZE_BYTES, 4096);
            pdts = Long.numberOfTrailingZeros(entries) - 7;
            long flags = (bits > 0 ? ScalableContextEntry.PASIDE : 0) | (useAts ? ScalableContextEntry.DTE : 0)
                    | (usePri ? ScalableContextEntry.PRE : 0);
            ScalableContextEntry ce = ScalableContextEntry.of(dir, pdts, flags);
            long at = contextTable(rid.bus(), rid.devfn() >= 128) + (long) (rid.devfn() & 0x7f) * ScalableContextEntry.SIZE_BYTES;
            memory.write64(at + 8, ce.q1());
            memory.write64(at, ce.q0());
            if (cachingMode()) {
                queue.submit(List.of(InvDesc.contextCache(InvDesc.G_DEVICE_OR_PAGE, 0, rid.rid(), 0),
                        InvDesc.iotlb(InvDesc.G_DOMAIN, 0, 0, 0, false)));
            }
        }
        VtdDevice device = new VtdDevice(this, rid, bits, useAts, usePri, dir, pdts);
        devices.put(rid.rid(), device);
        attached.put(device, new HashMap<>());
        return device;
    }

    /** {@return the context table for {@code bus} (the upper one of a scalable root entry if asked), allocating it} */
    private long contextTable(int bus, boolean upper) {
        long at = rootTable + (long) bus * RootEntry.SIZE_BYTES + (scalable && upper ? 8 : 0);
        long entry = memory.read64(at);
        if (RootEntry.present(entry)) {
            return RootEntry.pointer(entry);
        }
        long table = memory.allocateFrame();
        memory.write64(at, table | RootEntry.P);
        return table;
    }

    private VtdDevice checkDevice(IommuDevice device) {
        if (!(device instanceof VtdDevice vtd) || vtd.driver() != this) {
            throw ErrnoException.of(Errno.EINVAL, "%s is not behind %s", device.name(), name);
        }
        return vtd;
    }

    // ---- GET_HW_INFO --------------------------------------------------------------------------

    @Override
    public DriverHwInfo hwInfo(IommuDevice device, int type) {
        checkDevice(device);
        if (type != DriverHwInfo.TYPE_DEFAULT && type != VtdHwInfo.TYPE) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu hw_info: type %d not reported", type);
        }
        // Linux reports the erratum flag unconditionally (intel_iommu_hw_info).
        return new DriverHwInfo(VtdHwInfo.TYPE, new VtdHwInfo(VtdHwInfo.FLAG_ERRATA_772415_SPR17, cap.raw(), ecap.raw()).bytes());
    }

    // ---- domains ------------------------------------------------------------------------------

    private static final int SUPPORTED_FLAGS = PagingDomainFlags.NEST_PARENT | PagingDomainFlags.DIRTY_TRACKING | PagingDomainFlags.PASID;

    @Override
    public synchronized IommuPagingDomain allocPagingDomain(IommuDevice device, int flags, DriverData data) {
        checkDevice(device);
        if ((flags & ~SUPPORTED_FLAGS) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu paging domain: flags 0x%x not supported", flags & ~SUPPORTED_FLAGS);
        }
        if (data != null) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu paging domain: no driver data (type %d)", data.type());
        }
        boolean nestParent = (flags & PagingDomainFlags.NEST_PARENT) != 0;
        boolean dirty = (flags & PagingDomainFlags.DIRTY_TRACKING) != 0;
        if (nestParent && !(scalable && ecap.nested())) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu: no nested translation on %s", name);
        }
        if (dirty && !dirtyTrackingSupported()) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu: no second-stage dirty tracking on %s", name);
        }
        boolean firstStage = options.preferFirstStage() && scalable && ecap.has(EcapReg.FSTS) && !nestParent && !dirty;
        if (scalable && !firstStage && !ecap.has(EcapReg.SSTS)) {
            if (!ecap.has(EcapReg.FSTS) || nestParent || dirty) {
                throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu: %s has no usable second stage", name);
            }
            firstStage = true;
        }
        int did = allocateDid();
        if (firstStage) {
            return new VtdPagingDomain(this, memory, flags, true, 4, Math.min(48, cap.mgawBits()), did);
        }
        int width = 0;
        for (int aw = 3; aw >= 1; aw--) {
            int bits = 30 + 9 * aw;
            if ((cap.sagaw() & (1 << aw)) != 0 && bits <= Math.max(cap.mgawBits(), 39)) {
                width = bits;
                break;
            }
        }
        if (width == 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu: SAGAW 0x%x offers no table", cap.sagaw());
        }
        return new VtdPagingDomain(this, memory, flags, false, (width - 12) / 9, Math.min(width, cap.mgawBits()), did);
    }

    long pageSizes(boolean firstStage) {
        long sizes = 1L << 12;
        if (firstStage) {
            sizes |= 1L << 21;
            if (cap.firstStage1GPages()) {
                sizes |= 1L << 30;
            }
        } else {
            if ((cap.sllps() & 1) != 0) {
                sizes |= 1L << 21;
            }
            if ((cap.sllps() & 2) != 0) {
                sizes |= 1L << 30;
            }
        }
        return sizes;
    }

    private int allocateDid() {
        if (nextDid >= 1 << cap.domainIdBits()) {
            throw ErrnoException.of(Errno.ENOSPC, "intel-iommu: %s is out of domain ids", name);
        }
        return nextDid++;
    }

    @Override
    public synchronized IommuNestedDomain allocNestedDomain(IommuDevice device, IommuPagingDomain parent, int flags, DriverData data) {
        checkDevice(device);
        if (!(scalable && ecap.nested()) || (flags & ~PagingDomainFlags.PASID) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu nested domain: not supported (flags 0x%x)", flags);
        }
        if (!(parent instanceof VtdPagingDomain p) || p.driver() != this || !p.nestParent()) {
            throw ErrnoException.of(Errno.EINVAL, "intel-iommu nested domain: the parent is not a nest parent of %s", name);
        }
        if (data == null || data.type() != VtdNestedDomain.DATA_VTD_S1) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu nested domain: needs IOMMU_HWPT_DATA_VTD_S1");
        }
        byte[] bytes = data.bytes();
        if (bytes.length < VtdNestedDomain.S1_BYTES) {
            throw ErrnoException.of(Errno.EINVAL, "intel-iommu nested domain: iommu_hwpt_vtd_s1 of %d bytes", bytes.length);
        }
        for (int i = VtdNestedDomain.S1_BYTES; i < bytes.length; i++) {
            if (bytes[i] != 0) {
                throw ErrnoException.of(Errno.E2BIG, "intel-iommu nested domain: non-zero bytes past iommu_hwpt_vtd_s1");
            }
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long s1Flags = b.getLong(0);
        long pgtbl = b.getLong(8);
        int addrWidth = b.getInt(16);
        int reserved = b.getInt(20);
        if (reserved != 0 || (s1Flags & ~(VtdNestedDomain.S1_SRE | VtdNestedDomain.S1_EAFE | VtdNestedDomain.S1_WPE)) != 0) {
            throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu nested domain: flags 0x%x reserved 0x%x", s1Flags, reserved);
        }
        if (addrWidth != 48 && !(addrWidth == 57 && cap.firstStage5Level())) {
            throw ErrnoException.of(Errno.EINVAL, "intel-iommu nested domain: addr_width %d", addrWidth);
        }
        if ((s1Flags & VtdNestedDomain.S1_SRE) != 0 && !ecap.has(EcapReg.SRS)
                || (s1Flags & VtdNestedDomain.S1_EAFE) != 0 && !ecap.has(EcapReg.EAFS)) {
            throw ErrnoException.of(Errno.EINVAL, "intel-iommu nested domain: flags 0x%x not supported by the unit", s1Flags);
        }
        if ((pgtbl & 0xfff) != 0) {
            throw ErrnoException.of(Errno.EINVAL, "intel-iommu nested domain: pgtbl_addr 0x%x not page aligned", pgtbl);
        }
        VtdNestedDomain nested = new VtdNestedDomain(this, p, flags, allocateDid(), s1Flags, pgtbl, addrWidth);
        p.children.add(nested);
        return nested;
    }

    @Override
    public IommuViommu allocViommu(IommuDevice device, IommuPagingDomain parent, int type, DriverData data, MmioRegistrar mmio) {
        checkDevice(device);
        throw ErrnoException.of(Errno.EOPNOTSUPP, "intel-iommu: no vIOMMU type %d", type);
    }

    synchronized void freeDomain(VtdPagingDomain domain) {
        if (!domain.attachments.isEmpty() || !domain.children.isEmpty()) {
            throw new IllegalStateException("bug: freeing " + domain + " while in use");
        }
    }

    synchronized void freeNested(VtdNestedDomain nested) {
        if (!nested.attachments.isEmpty()) {
            throw new IllegalStateException("bug: freeing " + nested + " while attached");
        }
        nested.parent.children.remove(nested);
    }

    // ---- attach -------------------------------------------------------------------------------

    @Override
    public synchronized void attach(IommuDevice device, int pasid, IommuDomain domain) {
        VtdDevice dev = checkDevice(device);
        if (domain.driver() != this) {
            throw ErrnoException.of(Errno.EINVAL, "attach %s: the domain belongs to %s", device.name(), domain.driver().name());
        }
        // PASID 0 is the RID_PASID: the RID's own entry (Linux's IOMMU_NO_PASID).
        if (pasid != NO_PASID && (pasid <= 0 || dev.pasidBits() == 0 || pasid >= 1 << dev.pasidBits())) {
            throw ErrnoException.of(Errno.EINVAL, "attach %s: pasid %d beyond its %d PASID bits", device.name(), pasid, dev.pasidBits());
        }
        if (domain instanceof VtdPagingDomain paging && (paging.flags() & PagingDomainFlags.DIRTY_TRACKING) != 0 && !dev.dirtyTrackingCapable()) {
            throw ErrnoException.of(Errno.EINVAL, "attach %s: dirty-tracking domain on a device without it", device.name());
        }
        IommuDomain old = attached.get(dev).get(pasid);
        if (old == domain) {
            return;
        }
        if (!scalable) {
            if (pasid != NO_PASID || !(domain instanceof VtdPagingDomain paging) || paging.firstStage) {
                throw ErrnoException.of(Errno.EINVAL, "attach %s: legacy mode takes second-stage domains on the RID only", device.name());
            }
            writeLegacyContext(dev, paging, old);
        } else {
            PasidEntry pe = switch (domain) {
                case VtdPagingDomain p when p.firstStage -> PasidEntry.of(PasidEntry.q0(0, 0, PasidEntry.PGTT_FIRST_STAGE, false), p.did,
                        PasidEntry.q2(p.rootAddress(), 0, 0));
                case VtdPagingDomain p -> PasidEntry.of(PasidEntry.q0(p.rootAddress(), p.aw, PasidEntry.PGTT_SECOND_STAGE, p.dirtyTracking),
                        p.did, 0);
                case VtdNestedDomain n -> nestedEntry(n);
                default -> throw ErrnoException.of(Errno.EINVAL, "attach %s: %s is no VT-d domain", device.name(), domain);
            };
            writePasidEntry(dev, pasid, pe, old);
        }
        if (old != null) {
            attachments(old).remove(new Attachment(dev, pasid));
        }
        attachments(domain).add(new Attachment(dev, pasid));
        attached.get(dev).put(pasid, domain);
    }

    private static java.util.Set<Attachment> attachments(IommuDomain domain) {
        return domain instanceof VtdPagingDomain p ? p.attachments : ((VtdNestedDomain) domain).attachments;
    }

    private static PasidEntry nestedEntry(VtdNestedDomain n) {
        VtdPagingDomain parent = n.parent;
        long flags = ((n.s1Flags & VtdNestedDomain.S1_SRE) != 0 ? PasidEntry.SRE : 0)
                | ((n.s1Flags & VtdNestedDomain.S1_WPE) != 0 ? PasidEntry.WPE : 0)
                | ((n.s1Flags & VtdNestedDomain.S1_EAFE) != 0 ? PasidEntry.EAFE : 0);
        return PasidEntry.of(PasidEntry.q0(parent.rootAddress(), parent.aw, PasidEntry.PGTT_NESTED, parent.dirtyTracking), n.did,
                PasidEntry.q2(n.pgtblAddr, n.addrWidth == 57 ? 1 : 0, flags));
    }

    @Override
    public synchronized void detach(IommuDevice device, int pasid) {
        VtdDevice dev = checkDevice(device);
        IommuDomain old = attached.get(dev).remove(pasid);
        if (old == null) {
            return;
        }
        attachments(old).remove(new Attachment(dev, pasid));
        if (!scalable) {
            writeLegacyContext(dev, null, old);
        } else {
            writePasidEntry(dev, pasid, null, old);
        }
    }

    /** {@return what {@code device} has attached at {@code pasid}, or null} */
    public synchronized IommuDomain attached(IommuDevice device, int pasid) {
        Map<Integer, IommuDomain> map = attached.get(checkDevice(device));
        return map.get(pasid);
    }

    private void writeLegacyContext(VtdDevice dev, VtdPagingDomain domain, IommuDomain old) {
        long at = contextTable(dev.requesterId().bus(), false) + (long) dev.requesterId().devfn() * ContextEntry.SIZE_BYTES;
        if (domain == null) {
            memory.write64(at, 0);
            memory.write64(at + 8, 0);
        } else {
            ContextEntry ce = ContextEntry.of(domain.rootAddress(), dev.atsCapable() ? ContextEntry.TT_DEVICE_TLB : ContextEntry.TT_UNTRANSLATED,
                    domain.aw, domain.did);
            memory.write64(at + 8, ce.hi());
            memory.write64(at, ce.lo());
        }
        if (old == null && !cachingMode()) {
            return; // not present -> present: nothing can be cached
        }
        int oldDid = old == null ? 0 : ((VtdPagingDomain) old).did;
        List<InvDesc> flush = new ArrayList<>();
        flush.add(InvDesc.contextCache(InvDesc.G_DEVICE_OR_PAGE, oldDid, dev.rid(), 0));
        flush.add(InvDesc.iotlb(InvDesc.G_DOMAIN, oldDid, 0, 0, false));
        deviceTlbFlush(flush, dev, NO_PASID, 0, -1);
        queue.submit(flush);
    }

    /** {@return the PASID table slot of {@code pasid}, allocating the table page behind its directory entry} */
    private long pasidSlot(VtdDevice dev, int pasid) {
        long dirSlot = dev.pasidDir + PasidDirEntry.offset(pasid);
        long dirEntry = memory.read64(dirSlot);
        long table;
        if ((dirEntry & PasidDirEntry.P) == 0) {
            table = memory.allocateFrame();
            memory.write64(dirSlot, PasidDirEntry.of(table).raw());
        } else {
            table = dirEntry & PasidDirEntry.ADDR_MASK;
        }
        return table + PasidEntry.offset(pasid);
    }

    private void writePasidEntry(VtdDevice dev, int pasid, PasidEntry pe, IommuDomain old) {
        int slotPasid = pasid == NO_PASID ? 0 : pasid;
        long at = pasidSlot(dev, slotPasid);
        if (pe == null) {
            memory.write64(at, 0); // clear P first, as intel_pasid_tear_down_entry
        } else {
            memory.write64(at + 16, pe.q2());
            memory.write64(at + 8, pe.q1());
            memory.write64(at, pe.q0());
        }
        if (old == null && !cachingMode()) {
            return;
        }
        List<InvDesc> flush = new ArrayList<>();
        if (old == null) {
            VtdDomainTag tag = tag((IommuDomain) null, pe);
            flush.add(InvDesc.pasidCache(InvDesc.PCG_PASID, tag.did, slotPasid));
            flush.add(tag.firstStage ? InvDesc.pasidIotlb(InvDesc.PG_PASID, tag.did, slotPasid, 0, 0, false)
                    : InvDesc.iotlb(InvDesc.G_DOMAIN, tag.did, 0, 0, false));
        } else {
            VtdDomainTag tag = tag(old, null);
            flush.add(InvDesc.pasidCache(InvDesc.PCG_PASID, tag.did, slotPasid));
            flush.add(tag.firstStage ? InvDesc.pasidIotlb(InvDesc.PG_PASID, tag.did, slotPasid, 0, 0, false)
                    : InvDesc.iotlb(InvDesc.G_DOMAIN, tag.did, 0, 0, false));
            deviceTlbFlush(flush, dev, pasid, 0, -1);
        }
        queue.submit(flush, pe == null && dev.priCapable());
        if (pe == null) {
            for (int i = 8; i < PasidEntry.SIZE_BYTES; i += 8) {
                memory.write64(at + i, 0);
            }
        }
    }

    private record VtdDomainTag(int did, boolean firstStage) {
    }

    /**
     * {@return the DID whose caches a PASID-entry change must flush, and whether a PASID-based IOTLB
     * flush does it (first stage) or a domain IOTLB flush must (second stage and nested, whose
     * stage-2 side, nested walk caches included, only a type-2 flush reaches), as Linux's
     * intel_pasid_tear_down_entry picks}
     */
    private static VtdDomainTag tag(IommuDomain domain, PasidEntry pe) {
        if (domain instanceof VtdPagingDomain p) {
            return new VtdDomainTag(p.did, p.firstStage);
        }
        if (domain instanceof VtdNestedDomain n) {
            return new VtdDomainTag(n.did, false);
        }
        return new VtdDomainTag(pe.did(), pe.pgtt() == PasidEntry.PGTT_FIRST_STAGE || pe.pgtt() == PasidEntry.PGTT_PASS_THROUGH);
    }

    // ---- cache flushes ------------------------------------------------------------------------

    /** Caching mode caches not-present entries: a map must be flushed too (iotlb_sync_map). */
    synchronized void flushAfterMap(VtdPagingDomain domain, long iova, long lengthBytes) {
        if (cachingMode() && !domain.attachments.isEmpty()) {
            flushRange(domain, iova, lengthBytes);
        }
    }

    /** After an unmap (or a dirty read-and-clear) of [iova, +lengthBytes) in {@code domain}. */
    synchronized void flushRange(VtdPagingDomain domain, long iova, long lengthBytes) {
        List<InvDesc> flush = new ArrayList<>();
        int am = addressMask(iova, lengthBytes);
        long address = iova & -(1L << (am + 12));
        boolean psi = cap.pageSelectiveInvalidation() && am <= cap.mamv();
        if (!domain.attachments.isEmpty()) {
            if (domain.firstStage) {
                for (Attachment a : domain.attachments) {
                    int slot = a.pasid() == NO_PASID ? 0 : a.pasid();
                    flush.add(psi ? InvDesc.pasidIotlb(InvDesc.PG_PAGE, domain.did, slot, address, am, false)
                            : InvDesc.pasidIotlb(InvDesc.PG_PASID, domain.did, slot, 0, 0, false));
                }
            } else {
                flush.add(psi ? InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, domain.did, address, am, false)
                        : InvDesc.iotlb(InvDesc.G_DOMAIN, domain.did, 0, 0, false));
            }
            for (Attachment a : domain.attachments) {
                deviceTlbFlush(flush, a.device(), a.pasid(), iova, lengthBytes);
            }
        }
        // A change in a nest parent reaches the combined entries through each child's DID.
        for (VtdNestedDomain child : domain.children) {
            if (child.attachments.isEmpty()) {
                continue;
            }
            flush.add(psi ? InvDesc.iotlb(InvDesc.G_DEVICE_OR_PAGE, child.did, address, am, false)
                    : InvDesc.iotlb(InvDesc.G_DOMAIN, child.did, 0, 0, false));
            for (Attachment a : child.attachments) {
                deviceTlbFlush(flush, a.device(), a.pasid(), 0, -1);
            }
        }
        if (!flush.isEmpty()) {
            queue.submit(flush);
        }
    }

    /** A user's stage-1 invalidation (HWPT_INVALIDATE VTD_S1) for {@code nested}. */
    synchronized void flushNested(VtdNestedDomain nested, long addr, long npages, boolean leaf) {
        List<InvDesc> flush = new ArrayList<>();
        boolean all = npages == -1L || npages > (1L << 52);
        long lengthBytes = all ? -1 : npages << 12;
        int am = all ? 64 : addressMask(addr, lengthBytes);
        boolean psi = am <= cap.mamv();
        for (Attachment a : nested.attachments) {
            int slot = a.pasid() == NO_PASID ? 0 : a.pasid();
            flush.add(psi ? InvDesc.pasidIotlb(InvDesc.PG_PAGE, nested.did, slot, addr & -(1L << (am + 12)), am, leaf)
                    : InvDesc.pasidIotlb(InvDesc.PG_PASID, nested.did, slot, 0, 0, false));
            deviceTlbFlush(flush, a.device(), a.pasid(), all ? 0 : addr, lengthBytes);
        }
        if (!flush.isEmpty()) {
            queue.submit(flush);
        }
    }

    synchronized void setDirtyTracking(VtdPagingDomain domain, boolean enabled) {
        if (domain.dirtyTracking == enabled) {
            return;
        }
        domain.dirtyTracking = enabled;
        List<InvDesc> flush = new ArrayList<>();
        for (Attachment a : domain.attachments) {
            rewriteSsade(a, enabled, domain.did, flush);
        }
        for (VtdNestedDomain child : domain.children) {
            for (Attachment a : child.attachments) {
                rewriteSsade(a, enabled, child.did, flush);
            }
        }
        if (!domain.attachments.isEmpty()) {
            flush.add(InvDesc.iotlb(InvDesc.G_DOMAIN, domain.did, 0, 0, false));
        }
        for (VtdNestedDomain child : domain.children) {
            if (!child.attachments.isEmpty()) {
                flush.add(InvDesc.iotlb(InvDesc.G_DOMAIN, child.did, 0, 0, false));
            }
        }
        if (!flush.isEmpty()) {
            queue.submit(flush);
        }
    }

    private void rewriteSsade(Attachment a, boolean enabled, int did, List<InvDesc> flush) {
        int slot = a.pasid() == NO_PASID ? 0 : a.pasid();
        long at = pasidSlot(a.device(), slot);
        long q0 = memory.read64(at);
        memory.write64(at, enabled ? q0 | PasidEntry.SSADE : q0 & ~PasidEntry.SSADE);
        flush.add(InvDesc.pasidCache(InvDesc.PCG_PASID, did, slot));
        deviceTlbFlush(flush, a.device(), a.pasid(), 0, -1);
    }

    private void deviceTlbFlush(List<InvDesc> flush, VtdDevice dev, int pasid, long iova, long lengthBytes) {
        if (!dev.atsCapable() || cachingMode()) {
            return;
        }
        int order = lengthBytes == -1 ? 52 : Math.min(52, addressMask(iova, lengthBytes));
        long address = order >= 52 ? 0 : iova & -(1L << (order + 12));
        if (order >= 52) {
            // The whole address space: the largest encodable range.
            order = 51;
            address = 0;
        }
        flush.add(pasid == NO_PASID ? InvDesc.deviceTlb(dev.rid(), address, order)
                : InvDesc.pasidDeviceTlb(dev.rid(), pasid, false, address, order));
    }

    /** {@return the smallest AM whose naturally aligned 2^AM-page block covers [iova, +lengthBytes)} */
    static int addressMask(long iova, long lengthBytes) {
        long first = iova >>> 12;
        long last = (iova + lengthBytes - 1) >>> 12;
        int am = 0;
        while ((first >>> am) != (last >>> am)) {
            am++;
        }
        return am;
    }

    // ---- faults -------------------------------------------------------------------------------

    /** The fault interrupt (dmar_fault): read every pending record, log it, clear it. */
    private void handleFaults() {
        synchronized (faultLog) {
            int fsts = regs.read32(VtdRegs.FSTS);
            if ((fsts & VtdRegs.FSTS_PPF) != 0) {
                int n = cap.faultRecordCount();
                int start = (fsts >>> VtdRegs.FSTS_FRI_SHIFT) & 0xff;
                for (int i = 0; i < n; i++) {
                    int at = cap.faultRecordingOffset() + ((start + i) % n) * FaultRecord.SIZE_BYTES;
                    long hi = regs.read64(at + 8);
                    if ((hi & FaultRecord.F) == 0) {
                        continue;
                    }
                    faultLog.add(new FaultRecord(regs.read64(at), hi));
                    regs.write32(at + 12, (int) (FaultRecord.F >>> 32));
                }
            }
            regs.write32(VtdRegs.FSTS, VtdRegs.FSTS_PFO | VtdRegs.FSTS_IQE | VtdRegs.FSTS_ICE | VtdRegs.FSTS_ITE);
        }
    }

    // ---- page requests ------------------------------------------------------------------------

    @Override
    public void faultSink(IommuDevice device, IopfSink sink) {
        VtdDevice dev = checkDevice(device);
        if (sink == null) {
            sinks.remove(dev);
        } else {
            sinks.put(dev, sink);
        }
    }

    /**
     * The page request interrupt (intel_prq_report and prq_event_thread): take every descriptor
     * between PQH and PQT, move PQH, clear PPR (and PRO once drained), then hand each completed
     * group to its device's sink outside every driver lock.
     */
    private void handlePageRequests() {
        record Ready(VtdDevice device, int pasid, List<PageFault> group, int rid) {
        }
        List<Ready> ready = new ArrayList<>();
        synchronized (prqLock) {
            long size = 4096L << PRQ_ORDER;
            long head = regs.read64(VtdRegs.PQH) % size;
            long tail = regs.read64(VtdRegs.PQT) % size;
            while (head != tail) {
                PageRequest pr = new PageRequest(memory.read64(prq + head), memory.read64(prq + head + 8));
                head = (head + PageRequest.SIZE_BYTES) % size;
                pageRequests++;
                VtdDevice dev = devices.get(pr.rid());
                int pasid = pr.pasidPresent() ? pr.pasid() : NO_PASID;
                if (!pr.read() && !pr.write()) {
                    continue; // a stop marker: nothing to answer
                }
                int perm = (pr.read() ? PageFault.PERM_READ : 0) | (pr.write() ? PageFault.PERM_WRITE : 0)
                        | (pr.exec() ? PageFault.PERM_EXEC : 0) | (pr.privileged() ? PageFault.PERM_PRIV : 0);
                long key = ((long) pr.rid() << 32) | pr.prgIndex();
                List<PageFault> group = partialGroups.computeIfAbsent(key, k -> new ArrayList<>());
                group.add(new PageFault(pasid, pr.prgIndex(), perm, pr.address(), pr.lastInGroup()));
                if (pr.lastInGroup()) {
                    partialGroups.remove(key);
                    ready.add(new Ready(dev, pasid, group, pr.rid()));
                }
            }
            regs.write64(VtdRegs.PQH, head);
            regs.write32(VtdRegs.PRS, VtdRegs.PRS_PPR | VtdRegs.PRS_PRO);
        }
        for (Ready r : ready) {
            IopfSink sink = r.device() == null ? null : sinks.get(r.device());
            if (sink != null) {
                sink.report(r.pasid(), r.group());
            } else {
                respond(r.rid(), r.pasid(), r.group().getLast().grpid(), InvDesc.RESPONSE_INVALID);
            }
        }
    }

    @Override
    public void pageResponse(IommuDevice device, int pasid, int grpid, int code) {
        VtdDevice dev = checkDevice(device);
        respond(dev.rid(), pasid, grpid, code == 0 ? InvDesc.RESPONSE_SUCCESS : InvDesc.RESPONSE_INVALID);
    }

    private void respond(int rid, int pasid, int grpid, int code) {
        synchronized (prqLock) {
            pageResponses++;
        }
        queue.submit(List.of(InvDesc.pageGroupResponse(rid, pasid != NO_PASID, pasid == NO_PASID ? 0 : pasid, code, grpid)));
    }

    /** {@return page requests read and page responses sent so far} */
    public long[] pageRequestCounters() {
        synchronized (prqLock) {
            return new long[] {pageRequests, pageResponses};
        }
    }

    /** {@return the DMA faults the unit reported so far, oldest first} */
    public List<FaultRecord> faultLog() {
        synchronized (faultLog) {
            return List.copyOf(faultLog);
        }
    }

    /** {@return invalidation-queue batches and descriptors submitted so far} */
    public long[] queueCounters() {
        return new long[] {queue.batches(), queue.descriptors()};
    }

    @Override
    public String toString() {
        return "VtdDriver[" + name + (scalable ? ", scalable" : ", legacy") + "]";
    }

}
