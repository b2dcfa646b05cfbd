package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.PageFault;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.RegisteredUserMemory;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.Prot;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * One open {@code /dev/iommu}: the object table and every object in it, behind the typed
 * {@link Iommufd} API (the kernel's iommufd_ctx and the handlers of main.c, ioas.c, device.c).
 *
 * <p>Which devices exist is the platform's business: the context is handed the caller's user
 * memory and, for the selftest operations, a mock bus; it never names a concrete driver.
 */
public final class IommufdContext implements Iommufd {
    /* Implementation notes
     *
     * Locking: one context lock serializes every command (the kernel has finer locks; the
     * object-model semantics are the same). Lock order: context lock -> a fault queue's or
     * vEVENTQ's monitor -> UserMemory/MemoryFile/DmaBuf monitor -> PhysicalMemory monitor. Queue
     * files are read and written under their queue's monitor alone, so a blocked reader never holds
     * the context. DMA never takes the context lock: a device translates through its domain's page
     * table, which the hardware walker reads lock-free.
     *
     * Creation: an object's ID is reserved first, the object filled, then published; any failure
     * in between aborts and releases the ID, so a failed call never burns one.
     */

    /** The kernel's default RLIMIT_MEMLOCK is 8 MiB; jiommu contexts start unlimited unless told. */
    public static final long UNLIMITED = Long.MAX_VALUE;

    private final ReentrantLock lock = new ReentrantLock();
    private final UserMemory userMemory;
    private final SelftestDevices selftestBus;
    final ObjectTable objects = new ObjectTable();
    private PinAccounting accounting = new PinAccounting(UNLIMITED);
    private final VfioCompat vfio = new VfioCompat(this);
    final Attachments attachments = new Attachments(this);
    final MmioWindows mmio = new MmioWindows();
    private final HwptOps hwpts = new HwptOps(this);
    final ViommuOps viommus = new ViommuOps(this);
    private final SelftestOps selftest;
    private boolean mmAccounting;
    private boolean capSysResource = true;
    private boolean capIpcLock;
    private boolean noIommuSupport;
    private boolean capSysRawio = true;
    private Ioas compatIoas;
    private boolean closed;
    /** Dma-bufs this context imported, so each revocation reaches every IOAS once. Guarded by the lock. */
    private final Set<DmaBuf> watchedDmaBufs = Collections.newSetFromMap(new IdentityHashMap<>());
    /** Open derived files → how to drop their references. Guarded by the lock. */
    private final Map<IommufdFile, Runnable> openFiles = new LinkedHashMap<>();
    /** What the context's owner asked to close with it ({@link #closeWith}), in registration order. */
    private final List<AutoCloseable> closeWithContext = new ArrayList<>();

    /**
     * @param userMemory  the caller's address space (what IOAS_MAP's user_va means)
     * @param selftestBus the mock bus for IOMMU_TEST_CMD, or null when the platform has none
     */
    public IommufdContext(UserMemory userMemory, SelftestDevices selftestBus) {
        this.userMemory = userMemory;
        this.selftestBus = selftestBus;
        this.selftest = new SelftestOps(this);
    }

    // ---- configuration and observation -----------------------------------------------------------

    /** {@return the pinned-page counters (pinned_vm, locked_vm) of this context's "process"} */
    public PinAccounting accounting() {
        return accounting;
    }

    /** Sets RLIMIT_MEMLOCK, in pages, for later pins. */
    public void memlockLimitPages(long pages) {
        lockedRun(() -> accounting.limitPages(pages));
    }

    /** Whether the caller holds CAP_SYS_RESOURCE (needed to change the RLIMIT mode); default true. */
    public void capSysResource(boolean held) {
        lockedRun(() -> capSysResource = held);
    }

    /**
     * Whether IOAS_NOIOMMU_GET_PA works here, the kernel's CONFIG_IOMMUFD_NOIOMMU; off by default,
     * as in most kernels (the reference kernel's included), and the command is EOPNOTSUPP then.
     */
    public void noIommuSupport(boolean enabled) {
        lockedRun(() -> noIommuSupport = enabled);
    }

    /** Whether the caller holds CAP_SYS_RAWIO (needed by IOAS_NOIOMMU_GET_PA); default true. */
    public void capSysRawio(boolean held) {
        lockedRun(() -> capSysRawio = held);
    }

    /** Whether the caller holds CAP_IPC_LOCK: its mappings are then not charged against RLIMIT_MEMLOCK. */
    public void capIpcLock(boolean held) {
        lockedRun(() -> capIpcLock = held);
    }

    public UserMemory userMemory() {
        return userMemory;
    }

    /** {@return the number of live objects, for leak checks} */
    public int objectCount() {
        return locked(objects::size);
    }

    // ---- the lock ------------------------------------------------------------------------------

    <T> T locked(Supplier<T> op) {
        lock.lock();
        try {
            if (closed) {
                throw IommufdException.of(Errno.EBADF, "the iommufd context is closed");
            }
            return op.get();
        } catch (ErrnoException e) {
            throw IommufdException.from(e);
        } finally {
            lock.unlock();
        }
    }

    void lockedRun(Runnable op) {
        locked(() -> {
            op.run();
            return null;
        });
    }

    // ---- objects -------------------------------------------------------------------------------

    @Override
    public void destroy(int id) {
        lockedRun(() -> {
            IommufdObject object = objects.find(id);
            if (object == null) {
                throw IommufdException.of(Errno.ENOENT, "destroy: no object with id %d", id);
            }
            if (object.users() > 1) {
                throw IommufdException.of(Errno.EBUSY, "destroy: %s is in use (%d references)", object, object.users() - 1);
            }
            object.destroy();
            objects.release(id);
        });
    }

    @Override
    public int ioasAlloc() {
        return locked(() -> {
            Ioas ioas = new Ioas(this);
            ioas.id(objects.reserve());
            objects.publish(ioas);
            return ioas.id();
        });
    }

    Ioas ioas(int id) {
        return objects.get(id, ObjectType.IOAS, Ioas.class);
    }

    void forgetCompatIoas(Ioas ioas) {
        if (compatIoas == ioas) {
            compatIoas = null;
        }
    }

    Ioas compatIoas() {
        if (compatIoas == null) {
            throw IommufdException.of(Errno.ENODEV, "no compat IOAS: select one with IOMMU_VFIO_IOAS");
        }
        return compatIoas;
    }

    // ---- IOAS commands -------------------------------------------------------------------------------

    @Override
    public IovaRanges ioasIovaRanges(int ioasId) {
        return locked(() -> {
            Ioas ioas = ioas(ioasId);
            return new IovaRanges(ioas.iopt.usableRanges(), ioas.iopt.alignment());
        });
    }

    @Override
    public void ioasAllowIovas(int ioasId, List<IovaRange> allowed) {
        lockedRun(() -> {
            Ioas ioas = ioas(ioasId);
            for (int i = 0; i < allowed.size(); i++) {
                IovaRange r = allowed.get(i);
                if (Long.compareUnsigned(r.start(), r.last()) >= 0) {
                    throw IommufdException.of(Errno.EINVAL, "allow: range %s is empty or a single byte", r);
                }
                for (int j = 0; j < i; j++) {
                    if (allowed.get(j).intersects(r.start(), r.last())) {
                        throw IommufdException.of(Errno.EINVAL, "allow: ranges %s and %s overlap", allowed.get(j), r);
                    }
                }
            }
            ioas.iopt.setAllowed(allowed);
        });
    }

    @Override
    public long ioasMap(int ioasId, int flags, long userVa, long lengthBytes, long iova) {
        return locked(() -> {
            checkMapFlags(flags, iova, lengthBytes);
            Ioas ioas = ioas(ioasId);
            if (lengthBytes != 0 && Long.compareUnsigned(userVa + lengthBytes, userVa) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "map user_va=0x%x length=0x%x: wraps", userVa, lengthBytes);
            }
            if (lengthBytes == 0 || Long.compareUnsigned(lengthBytes, -1L - UserMemory.PAGE_BYTES) > 0) {
                throw IommufdException.of(Errno.EINVAL, "map length=0x%x: zero or too long", lengthBytes);
            }
            // The pages come from the address space of whoever maps (the kernel's source_mm), which
            // is not the context's when a forked child inherited the fd.
            return mapPages(ioas, flags, new IoptPages(userMemory.mappingSource(), userVa, lengthBytes, (flags & MAP_WRITEABLE) != 0,
                    accounting, defaultMode()), lengthBytes, iova, userVa);
        });
    }

    @Override
    public long ioasMapFile(int ioasId, int flags, MemoryFile file, long start, long lengthBytes, long iova) {
        return locked(() -> {
            checkMapFlags(flags, iova, lengthBytes);
            Ioas ioas = ioas(ioasId);
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "map_file: zero length");
            }
            if (Long.compareUnsigned(start + lengthBytes, start) < 0 || start < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "map_file start=0x%x length=0x%x: wraps", start, lengthBytes);
            }
            if ((flags & MAP_WRITEABLE) != 0 && !file.writable()) {
                throw IommufdException.of(Errno.EPERM, "map_file: %s is not open for writing", file.name());
            }
            return mapPages(ioas, flags, new IoptPages(file, start, lengthBytes, (flags & MAP_WRITEABLE) != 0,
                    accounting, defaultMode()), lengthBytes, iova, start);
        });
    }

    @Override
    public long ioasMapFile(int ioasId, int flags, DmaBuf buf, long start, long lengthBytes, long iova) {
        return locked(() -> {
            checkMapFlags(flags, iova, lengthBytes);
            Ioas ioas = ioas(ioasId);
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "map_file: zero length");
            }
            if (buf.revoked()) {
                throw IommufdException.of(Errno.ENODEV, "map_file: the dma-buf is revoked");
            }
            if (start < 0 || Long.compareUnsigned(start + lengthBytes, start) < 0 || start + lengthBytes > buf.sizeBytes()) {
                throw IommufdException.of(Errno.EINVAL, "map_file start=0x%x length=0x%x: outside the dma-buf's 0x%x bytes",
                        start, lengthBytes, buf.sizeBytes());
            }
            if (watchedDmaBufs.add(buf)) {
                buf.onRevoke(revoked -> {
                    lock.lock();
                    try {
                        if (!closed) {
                            for (IommufdObject object : objects.all()) {
                                if (object instanceof Ioas each) {
                                    each.iopt.revoke(revoked);
                                }
                            }
                        }
                    } finally {
                        lock.unlock();
                    }
                });
            }
            // Device memory: nobody pins it, so nobody is charged.
            return mapPages(ioas, flags, new IoptPages(buf, start, lengthBytes, (flags & MAP_WRITEABLE) != 0,
                    null, PinAccounting.Mode.NONE), lengthBytes, iova, start);
        });
    }

    /** Maps a new pages object as one area; fixed or automatic IOVA. Also the VFIO MAP_DMA path. */
    long mapPages(Ioas ioas, int flags, IoptPages pages, long lengthBytes, long iova, long alignHint) {
        return ioas.iopt.map(pages, 0, lengthBytes, iova, (flags & MAP_FIXED_IOVA) != 0, prot(flags), alignHint);
    }

    private static void checkMapFlags(int flags, long iova, long lengthBytes) {
        if ((flags & ~(MAP_FIXED_IOVA | MAP_WRITEABLE | MAP_READABLE)) != 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "map flags 0x%x: unknown bits", flags);
        }
        if (iova == -1L || lengthBytes == -1L) {
            throw IommufdException.of(Errno.EOVERFLOW, "map iova=0x%x length=0x%x: ULONG_MAX", iova, lengthBytes);
        }
        if ((flags & (MAP_WRITEABLE | MAP_READABLE)) == 0) {
            throw IommufdException.of(Errno.EINVAL, "map flags 0x%x: neither READABLE nor WRITEABLE", flags);
        }
    }

    static int prot(int mapFlags) {
        return ((mapFlags & MAP_READABLE) != 0 ? Prot.READ : 0) | ((mapFlags & MAP_WRITEABLE) != 0 ? Prot.WRITE : 0);
    }

    PinAccounting.Mode defaultMode() {
        if (capIpcLock) {
            return PinAccounting.Mode.NONE;
        }
        return mmAccounting ? PinAccounting.Mode.MM : PinAccounting.Mode.USER;
    }

    @Override
    public long ioasCopy(int dstIoasId, int flags, int srcIoasId, long srcIova, long lengthBytes, long dstIova) {
        return locked(() -> {
            int f = flags & ~IommufdSelftest.FLAGS_SYZ;
            if ((f & ~(MAP_FIXED_IOVA | MAP_WRITEABLE | MAP_READABLE)) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "copy flags 0x%x: unknown bits", flags);
            }
            if (lengthBytes == -1L || srcIova == -1L || dstIova == -1L) {
                throw IommufdException.of(Errno.EOVERFLOW, "copy: an argument is ULONG_MAX");
            }
            if ((f & (MAP_WRITEABLE | MAP_READABLE)) == 0) {
                throw IommufdException.of(Errno.EINVAL, "copy flags 0x%x: neither READABLE nor WRITEABLE", flags);
            }
            Ioas src = ioas(srcIoasId);
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "copy: zero length");
            }
            if (Long.compareUnsigned(srcIova + lengthBytes - 1, srcIova) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "copy src_iova=0x%x length=0x%x: wraps", srcIova, lengthBytes);
            }
            List<IoPagetable.Slice> slices = src.iopt.slices(srcIova, lengthBytes);
            Ioas dst = ioas(dstIoasId);
            return dst.iopt.copyIn(slices, lengthBytes, dstIova, (f & MAP_FIXED_IOVA) != 0, prot(f));
        });
    }

    @Override
    public PhysicalRange ioasNoIommuGetPa(int flags, int ioasId, long iova, long maxLengthBytes) {
        return locked(() -> {
            if (!noIommuSupport) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "noiommu_get_pa: this context has no no-IOMMU support");
            }
            if (!capSysRawio) {
                throw IommufdException.of(Errno.EPERM, "noiommu_get_pa: needs CAP_SYS_RAWIO");
            }
            if (flags != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "noiommu_get_pa: flags 0x%x (or a non-zero __reserved)", flags);
            }
            if (maxLengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "noiommu_get_pa: zero length");
            }
            if (iova == -1L) {
                throw IommufdException.of(Errno.EOVERFLOW, "noiommu_get_pa: iova ULONG_MAX");
            }
            return ioas(ioasId).iopt.physicalRange(iova, maxLengthBytes);
        });
    }

    @Override
    public long ioasUnmap(int ioasId, long iova, long lengthBytes) {
        return locked(() -> {
            Ioas ioas = ioas(ioasId);
            if (iova == 0 && lengthBytes == UNMAP_ALL_LENGTH) {
                return ioas.iopt.unmap(0, -1L, true);
            }
            if (iova == -1L || lengthBytes == -1L) {
                throw IommufdException.of(Errno.EOVERFLOW, "unmap iova=0x%x length=0x%x: ULONG_MAX", iova, lengthBytes);
            }
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "unmap: zero length");
            }
            long last = iova + lengthBytes - 1;
            if (Long.compareUnsigned(last, iova) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "unmap iova=0x%x length=0x%x: wraps", iova, lengthBytes);
            }
            return ioas.iopt.unmap(iova, last, false);
        });
    }

    // ---- hardware page tables, hardware info, dirty tracking, invalidation (HwptOps) ------------------

    @Override
    public int hwptAlloc(int flags, int devId, int ptId, int dataType, byte[] data, int faultId) {
        return hwpts.hwptAlloc(flags, devId, ptId, dataType, data, faultId);
    }

    @Override
    public int hwptInvalidate(int hwptId, int dataType, int entryLen, int entryNum, byte[] entries) {
        return hwpts.hwptInvalidate(hwptId, dataType, entryLen, entryNum, entries);
    }

    @Override
    public HwInfo getHwInfo(int devId, int flags, int inDataType) {
        return hwpts.getHwInfo(devId, flags, inDataType);
    }

    @Override
    public void hwptSetDirtyTracking(int hwptId, int flags) {
        hwpts.hwptSetDirtyTracking(hwptId, flags);
    }

    @Override
    public DirtyBitmap hwptGetDirtyBitmap(int hwptId, int flags, long iova, long lengthBytes, long pageSize) {
        return hwpts.hwptGetDirtyBitmap(hwptId, flags, iova, lengthBytes, pageSize);
    }

    // ---- fault queues, vIOMMU, vDEVICE, vEVENTQ, HW queues, MMIO windows (ViommuOps) ----------------

    @Override
    public FaultQueueAlloc faultQueueAlloc(int flags) {
        return viommus.faultQueueAlloc(flags);
    }

    @Override
    public ViommuAlloc viommuAlloc(int flags, int type, int devId, int hwptId, byte[] data) {
        return viommus.viommuAlloc(flags, type, devId, hwptId, data);
    }

    @Override
    public int vdeviceAlloc(int viommuId, int devId, long virtId) {
        return viommus.vdeviceAlloc(viommuId, devId, virtId);
    }

    @Override
    public int vdeviceAlloc(int viommuId, int devId, long[] virtIds) {
        return viommus.vdeviceAlloc(viommuId, devId, virtIds);
    }

    @Override
    public VeventqAlloc veventqAlloc(int flags, int viommuId, int type, int depth) {
        return viommus.veventqAlloc(flags, viommuId, type, depth);
    }

    @Override
    public int hwQueueAlloc(int flags, int viommuId, int type, int index, long nestingParentIova, long lengthBytes) {
        return viommus.hwQueueAlloc(flags, viommuId, type, index, nestingParentIova, lengthBytes);
    }

    @Override
    public MmioMapping mmap(long offset, long lengthBytes) {
        return viommus.mmap(offset, lengthBytes);
    }

    // ---- IOAS_CHANGE_PROCESS --------------------------------------------------------------------------

    @Override
    public void ioasChangeProcess(PinAccounting process) {
        lockedRun(() -> {
            Set<IoptPages> backings = Collections.newSetFromMap(new IdentityHashMap<>());
            for (IommufdObject object : objects.all()) {
                if (object instanceof Ioas ioas) {
                    for (IoptArea area : ioas.iopt.areas()) {
                        // Only plain files: the kernel refuses dma-buf areas here too.
                        if (!(area.pages.source() instanceof MemoryFile)) {
                            throw IommufdException.of(Errno.EINVAL, "ioas_change_process: %s of %s is not file-backed", area, ioas);
                        }
                        backings.add(area.pages);
                    }
                }
            }
            if (process == accounting) {
                return;
            }
            // Charge the new owner first, so a refusal changes nothing; then let the old one go.
            List<IoptPages> charged = new ArrayList<>();
            try {
                for (IoptPages pages : backings) {
                    process.charge(pages.accountingMode(), pages.pinnedPages());
                    charged.add(pages);
                }
            } catch (IommufdException e) {
                for (IoptPages pages : charged) {
                    process.uncharge(pages.accountingMode(), pages.pinnedPages());
                }
                throw e;
            }
            for (IoptPages pages : backings) {
                pages.accounting().uncharge(pages.accountingMode(), pages.pinnedPages());
                pages.accounting(process);
            }
            accounting = process;
        });
    }

    // ---- options and VFIO selection ------------------------------------------------------------------

    @Override
    public long optionSet(int optionId, int objectId, long value) {
        return locked(() -> switch (optionId) {
            case OPTION_RLIMIT_MODE -> {
                if (objectId != 0) {
                    throw IommufdException.of(Errno.EOPNOTSUPP, "option RLIMIT_MODE is global: object_id must be 0, not %d", objectId);
                }
                if (!capSysResource) {
                    throw IommufdException.of(Errno.EPERM, "option RLIMIT_MODE: needs CAP_SYS_RESOURCE");
                }
                if (!objects.isEmpty()) {
                    throw IommufdException.of(Errno.EBUSY, "option RLIMIT_MODE: the context already has objects");
                }
                if (value != 0 && value != 1) {
                    throw IommufdException.of(Errno.EINVAL, "option RLIMIT_MODE: value %d is neither 0 (user) nor 1 (mm)", value);
                }
                mmAccounting = value == 1;
                yield value;
            }
            case OPTION_HUGE_PAGES -> {
                Ioas ioas = ioas(objectId);
                if (value != 0 && value != 1) {
                    throw IommufdException.of(Errno.EINVAL, "option HUGE_PAGES: value %d is neither 0 nor 1", value);
                }
                ioas.iopt.hugePages(value == 1);
                yield value;
            }
            default -> throw IommufdException.of(Errno.EOPNOTSUPP, "option %d unknown", optionId);
        });
    }

    @Override
    public long optionGet(int optionId, int objectId) {
        return locked(() -> switch (optionId) {
            case OPTION_RLIMIT_MODE -> {
                if (objectId != 0) {
                    throw IommufdException.of(Errno.EOPNOTSUPP, "option RLIMIT_MODE is global: object_id must be 0, not %d", objectId);
                }
                yield mmAccounting ? 1L : 0L;
            }
            case OPTION_HUGE_PAGES -> ioas(objectId).iopt.hugePages() ? 1L : 0L;
            default -> throw IommufdException.of(Errno.EOPNOTSUPP, "option %d unknown", optionId);
        });
    }

    @Override
    public int vfioIoas(int op, int ioasId) {
        return locked(() -> switch (op) {
            case VFIO_IOAS_GET -> compatIoas().id();
            case VFIO_IOAS_SET -> {
                compatIoas = ioas(ioasId);
                yield ioasId;
            }
            case VFIO_IOAS_CLEAR -> {
                compatIoas = null;
                yield ioasId;
            }
            default -> throw IommufdException.of(Errno.EOPNOTSUPP, "vfio_ioas op %d unknown", op);
        });
    }

    @Override
    public VfioContainer vfio() {
        return vfio;
    }

    @Override
    public IommufdSelftest selftest() {
        return selftest;
    }

    SelftestDevices selftestBus() {
        if (selftestBus == null) {
            throw IommufdException.of(Errno.ENOTTY, "IOMMU_TEST_CMD: this platform has no mock bus");
        }
        return selftestBus;
    }

    // ---- device binding and attachment ------------------------------------------------------------

    /** Binds {@code device} as a DEVICE object under a reserved {@code id}; the binding holds a reference. */
    IommufdDevice bind(IommuDevice device, int id) {
        IommufdDevice idev = new IommufdDevice(device);
        idev.id(id);
        idev.get();
        return idev;
    }

    /** Makes and publishes an HWPT_PAGING on {@code ioas}. */
    HwptPaging createPaging(Ioas ioas, IommuDevice device, int flags, DriverData data, boolean auto) {
        int id = objects.reserve();
        IommuPagingDomain domain;
        try {
            domain = device.driver().allocPagingDomain(device, flags, data);
        } catch (RuntimeException e) {
            objects.release(id);
            throw e;
        }
        HwptPaging hwpt = new HwptPaging(ioas, domain, auto);
        hwpt.enforceCacheCoherency = device.enforcesCacheCoherency();
        hwpt.id(id);
        try {
            ioas.iopt.addDomain(domain, hwpt);
        } catch (RuntimeException e) {
            domain.free();
            objects.release(id);
            throw e;
        }
        ioas.get();
        ioas.hwpts.add(hwpt);
        objects.publish(hwpt);
        return hwpt;
    }

    /** SELFTEST destroy: detach, unbind, remove the mock device. */
    void unbindSelftestDevice(SelftestDevice st) {
        unbind(st.idev);
        selftestBus().removeDevice(st.idev.device);
    }

    // ---- derived files --------------------------------------------------------------------------------

    void openFile(IommufdFile file, Runnable release) {
        openFiles.put(file, release);
    }

    /** Closes a derived file: drops its reference once; after the context closed there is nothing left to drop. */
    void closeFile(IommufdFile file, Runnable release) {
        lock.lock();
        try {
            if (openFiles.remove(file) != null) {
                release.run();
            }
        } finally {
            lock.unlock();
        }
    }

    // ---- devices bound by a VMM (what VFIO's device cdev does for a real device) ----------------------

    /** Binds an emulated device to this context; {@return its DEVICE ID}. Destroying that ID stays EBUSY until unbound. */
    public int bindDevice(IommuDevice device) {
        return locked(() -> {
            for (IommufdObject object : objects.all()) {
                if (object instanceof IommufdDevice bound && bound.device == device) {
                    throw IommufdException.of(Errno.EBUSY, "bind %s: already bound as %s", device.name(), bound);
                }
            }
            IommufdDevice idev = bind(device, objects.reserve());
            objects.publish(idev);
            device.driver().faultSink(device, (pasid, group) -> reportDeviceFault(idev, pasid, group));
            return idev.id();
        });
    }

    /** Unbinds: detaches every PASID and the RID, destroys the vDEVICE (leaving a tombstone), frees the ID. */
    public void unbindDevice(int devId) {
        lockedRun(() -> unbind(objects.get(devId, ObjectType.DEVICE, IommufdDevice.class)));
    }

    /** Attaches {@code pasid} ({@link IommuDriver#NO_PASID} for the RID) of a bound device; {@return the HWPT attached} */
    public int attachDevice(int devId, int pasid, int ptId) {
        return locked(() -> attachments.attach(objects.get(devId, ObjectType.DEVICE, IommufdDevice.class), pasid, ptId).id());
    }

    /** Replaces what {@code pasid} of a bound device is attached to; {@return the HWPT attached} */
    public int replaceDevice(int devId, int pasid, int ptId) {
        return locked(() -> attachments.replace(objects.get(devId, ObjectType.DEVICE, IommufdDevice.class), pasid, ptId).id());
    }

    /** Detaches {@code pasid} of a bound device (nothing attached is fine). */
    public void detachDevice(int devId, int pasid) {
        lockedRun(() -> attachments.detach(objects.get(devId, ObjectType.DEVICE, IommufdDevice.class), pasid));
    }

    /**
     * A page-request group from a bound device's driver: queued on the fault object of the HWPT
     * attached at {@code pasid}, or answered INVALID when there is none (the kernel's
     * iopf_error_response).
     */
    private void reportDeviceFault(IommufdDevice idev, int pasid, List<PageFault> group) {
        boolean queued = false;
        lock.lock();
        try {
            if (!closed && objects.find(idev.id()) == idev) {
                List<FaultQueue.Fault> faults = new ArrayList<>();
                for (PageFault f : group) {
                    int flags = (f.last() ? FaultQueue.FLAG_LAST_PAGE : 0) | (pasid != IommuDriver.NO_PASID ? FaultQueue.FLAG_PASID_VALID : 0);
                    faults.add(new FaultQueue.Fault(flags, idev.id(), pasid == IommuDriver.NO_PASID ? 0 : pasid, f.grpid(), f.perm(), f.addr()));
                }
                queued = viommus.reportFault(idev, pasid, faults);
            }
        } finally {
            lock.unlock();
        }
        if (!queued && !group.isEmpty()) {
            idev.device.driver().pageResponse(idev.device, pasid, group.getLast().grpid(), FaultQueue.RESPONSE_INVALID);
        }
    }

    private void unbind(IommufdDevice idev) {
        idev.device.driver().faultSink(idev.device, null);
        attachments.detachAll(idev);
        Vdevice vdev = idev.vdevice;
        if (vdev != null) {
            // The device goes first: its vDEVICE goes with it and leaves a tombstone ID (§3.6).
            vdev.destroy();
            objects.tombstone(vdev.id());
        }
        idev.put();
        idev.destroy();
        objects.release(idev.id());
    }

    // ---- backend ------------------------------------------------------------------------------------------

    @Override
    public String backend() {
        return "emulated";
    }

    /** Registers fresh native memory at its own address, so the address a caller holds is the VA it maps. */
    @Override
    public MemorySegment allocateUserMemory(long lengthBytes) {
        if (!(userMemory instanceof RegisteredUserMemory registered)) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "allocateUserMemory: the user memory (%s) takes no new memory",
                    userMemory.getClass().getSimpleName());
        }
        if (lengthBytes <= 0) {
            throw IommufdException.of(Errno.EINVAL, "allocateUserMemory: length %d", lengthBytes);
        }
        long rounded = (lengthBytes + UserMemory.PAGE_BYTES - 1) & -UserMemory.PAGE_BYTES;
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(rounded, UserMemory.PAGE_BYTES);
        try {
            registered.register(segment.address(), segment, true);
        } catch (ErrnoException e) {
            arena.close();
            throw IommufdException.from(e);
        }
        closeWith(() -> {
            registered.unregister(segment.address());
            arena.close();
        });
        return segment;
    }

    /** Closes {@code resource} when the context closes, after every object (and so every pin) is gone. */
    public void closeWith(AutoCloseable resource) {
        lock.lock();
        try {
            closeWithContext.add(resource);
        } finally {
            lock.unlock();
        }
    }

    // ---- close ---------------------------------------------------------------------------------------

    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            selftest.closeAllAccesses();
            for (Runnable release : List.copyOf(openFiles.values())) {
                release.run();
            }
            openFiles.clear();
            boolean progress = true;
            while (progress) {
                progress = false;
                for (IommufdObject object : objects.all()) {
                    // Destroying one object may take others with it (a SELFTEST its auto HWPT).
                    if (objects.find(object.id()) == object && object.users() == 1) {
                        object.destroy();
                        objects.release(object.id());
                        progress = true;
                    }
                }
                if (!progress) {
                    // What is left is held by bindings: devices a VMM bound go the way unbind takes them.
                    for (IommufdObject object : objects.all()) {
                        if (object instanceof IommufdDevice idev && objects.find(idev.id()) == idev) {
                            unbind(idev);
                            progress = true;
                        }
                    }
                }
            }
            if (objects.size() != 0) {
                throw new IllegalStateException("bug: objects left after close: " + objects.all());
            }
            selftest.releaseDmaBufs();
            closed = true;
            closeResources();
        } finally {
            lock.unlock();
        }
    }

    /** Last in, first out: what was registered last may depend on what came before. */
    private void closeResources() {
        RuntimeException failure = null;
        for (int i = closeWithContext.size() - 1; i >= 0; i--) {
            try {
                closeWithContext.get(i).close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("closing a resource of the context", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        closeWithContext.clear();
        if (failure != null) {
            throw failure;
        }
    }
}
