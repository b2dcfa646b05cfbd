package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuHwQueue;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.iommu.IommuViommu;
import dev.jiommu.iommu.InvalidationBatch;
import dev.jiommu.iommu.InvalidationFailure;
import dev.jiommu.iommu.IommuPagingDomain;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.MemoryFile;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.DirtyBitmap;
import dev.jiommu.pt.Prot;

import java.lang.foreign.MemorySegment;
import java.util.List;
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
     * object-model semantics are the same). Lock order: context lock -> UserMemory/MemoryFile
     * monitor -> PhysicalMemory monitor. DMA never takes the context lock: a device translates
     * through its domain's page table, which the hardware walker reads lock-free.
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
    private final SelftestOps selftest;
    private boolean mmAccounting;
    private boolean capSysResource = true;
    private boolean capIpcLock;
    private Ioas compatIoas;
    private boolean closed;
    /** Dma-bufs this context imported, so each revocation reaches every IOAS once. Guarded by the lock. */
    private final java.util.Set<DmaBuf> watchedDmaBufs = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    /** Open derived files → how to drop their references. Guarded by the lock. */
    private final java.util.Map<IommufdFile, Runnable> openFiles = new java.util.LinkedHashMap<>();

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
            return mapPages(ioas, flags, new IoptPages(userMemory, userVa, lengthBytes, (flags & MAP_WRITEABLE) != 0,
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

    // ---- hardware page tables, hardware info, dirty tracking ---------------------------------------------

    @Override
    public int hwptAlloc(int flags, int devId, int ptId, int dataType, byte[] data, int faultId) {
        return locked(() -> {
            int length = data == null ? 0 : data.length;
            if ((dataType == HWPT_DATA_NONE) != (length == 0)) {
                throw IommufdException.of(Errno.EINVAL, "hwpt_alloc: data_type %d with data_len %d", dataType, length);
            }
            IommufdDevice idev = objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            IommufdObject pt = objects.find(ptId);
            if (pt == null) {
                throw IommufdException.of(Errno.EINVAL, "hwpt_alloc: no object with pt_id %d", ptId);
            }
            if (pt instanceof HwptPaging parent) {
                return allocNested(flags, idev, parent, dataType, data, faultId).id();
            }
            if (pt instanceof Viommu viommu) {
                return allocNestedThroughViommu(flags, idev, viommu, dataType, data, faultId).id();
            }
            if (!(pt instanceof Ioas ioas)) {
                throw IommufdException.of(Errno.EINVAL, "hwpt_alloc: pt_id %d is a %s, not an IOAS or HWPT_PAGING", ptId, pt.type());
            }
            int known = HWPT_ALLOC_NEST_PARENT | HWPT_ALLOC_DIRTY_TRACKING | HWPT_ALLOC_FAULT_ID_VALID | HWPT_ALLOC_PASID;
            if ((flags & ~known) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc: unknown flags 0x%x", flags & ~known);
            }
            FaultQueue fault = null;
            if ((flags & HWPT_ALLOC_FAULT_ID_VALID) != 0) {
                if ((flags & HWPT_ALLOC_NEST_PARENT) != 0) {
                    throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc: a nest parent cannot report faults");
                }
                fault = objects.get(faultId, ObjectType.FAULT, FaultQueue.class);
            }
            DriverData payload = length == 0 ? null : new DriverData(dataType, data);
            HwptPaging hwpt = createPaging(ioas, idev.device, flags & ~HWPT_ALLOC_FAULT_ID_VALID, payload, false);
            if (fault != null) {
                hwpt.faultQueue(fault);
            }
            return hwpt.id();
        });
    }

    /** The nested path of HWPT_ALLOC: a user stage 1 on a manual nest-parent HWPT of the same driver. */
    private HwptNested allocNested(int flags, IommufdDevice idev, HwptPaging parent, int dataType, byte[] data, int faultId) {
        if ((flags & ~(HWPT_ALLOC_FAULT_ID_VALID | HWPT_ALLOC_PASID)) != 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc nested: flags 0x%x", flags);
        }
        if (data == null || data.length == 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc nested: a nested HWPT needs a driver payload");
        }
        if (parent.auto() || (parent.domain.flags() & HWPT_ALLOC_NEST_PARENT) == 0
                || parent.domain.driver() != idev.device.driver()) {
            throw IommufdException.of(Errno.EINVAL, "hwpt_alloc nested: %s is not a manual nest parent of %s's IOMMU", parent, idev);
        }
        FaultQueue fault = (flags & HWPT_ALLOC_FAULT_ID_VALID) != 0 ? objects.get(faultId, ObjectType.FAULT, FaultQueue.class) : null;
        int id = objects.reserve();
        try {
            IommuNestedDomain domain = idev.device.driver().allocNestedDomain(idev.device, parent.domain,
                    flags & ~HWPT_ALLOC_FAULT_ID_VALID, new DriverData(dataType, data));
            HwptNested hwpt = new HwptNested(parent, null, domain);
            hwpt.id(id);
            if (fault != null) {
                hwpt.faultQueue(fault);
            }
            parent.get();
            objects.publish(hwpt);
            return hwpt;
        } catch (RuntimeException e) {
            objects.release(id);
            throw e;
        }
    }

    /** The vIOMMU path of HWPT_ALLOC: a nested HWPT sharing the vIOMMU's cache tags and device table. */
    private HwptNested allocNestedThroughViommu(int flags, IommufdDevice idev, Viommu viommu, int dataType, byte[] data, int faultId) {
        if (idev.device.driver() != viommu.driver) {
            throw IommufdException.of(Errno.EINVAL, "hwpt_alloc: %s is not behind the IOMMU of %s", idev, viommu);
        }
        if ((flags & ~(HWPT_ALLOC_FAULT_ID_VALID | HWPT_ALLOC_PASID)) != 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc through %s: flags 0x%x", viommu, flags);
        }
        if (data == null || data.length == 0) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "hwpt_alloc through %s: a nested HWPT needs a driver payload", viommu);
        }
        FaultQueue fault = (flags & HWPT_ALLOC_FAULT_ID_VALID) != 0 ? objects.get(faultId, ObjectType.FAULT, FaultQueue.class) : null;
        int id = objects.reserve();
        try {
            IommuNestedDomain domain = viommu.viommu.allocNestedDomain(idev.device, flags & ~HWPT_ALLOC_FAULT_ID_VALID,
                    new DriverData(dataType, data));
            HwptNested hwpt = new HwptNested(viommu.parent, viommu, domain);
            hwpt.id(id);
            if (fault != null) {
                hwpt.faultQueue(fault);
            }
            viommu.get();
            objects.publish(hwpt);
            return hwpt;
        } catch (RuntimeException e) {
            objects.release(id);
            throw e;
        }
    }

    // ---- fault queues -------------------------------------------------------------------------------

    @Override
    public FaultQueueAlloc faultQueueAlloc(int flags) {
        return locked(() -> {
            if (flags != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "fault_queue_alloc: flags 0x%x", flags);
            }
            FaultQueue queue = new FaultQueue();
            queue.id(objects.reserve());
            objects.publish(queue);
            return new FaultQueueAlloc(queue.id(), queue.openFile(this));
        });
    }

    /** Delivers a page-request group from (device, pasid) to the fault queue of the HWPT attached there. */
    void reportFault(IommufdDevice idev, int pasid, List<FaultQueue.Fault> faults) {
        Hwpt hwpt = idev.attached.get(pasid);
        if (hwpt == null || hwpt.fault == null) {
            throw IommufdException.of(Errno.EINVAL, "iopf on %s pasid %d: no fault-capable HWPT attached there", idev, pasid);
        }
        hwpt.fault.report(new FaultQueue.Group(faults, idev, pasid));
    }

    // ---- vIOMMU, vDEVICE, MMIO windows ---------------------------------------------------------------

    @Override
    public ViommuAlloc viommuAlloc(int flags, int type, int devId, int hwptId, byte[] data) {
        return locked(() -> {
            if (flags != 0 || type == VIOMMU_TYPE_DEFAULT) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "viommu_alloc: flags 0x%x type %d", flags, type);
            }
            IommufdDevice idev = objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            HwptPaging parent = objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class);
            if ((parent.domain.flags() & HWPT_ALLOC_NEST_PARENT) == 0) {
                throw IommufdException.of(Errno.EINVAL, "viommu_alloc: %s was not allocated as a nest parent", parent);
            }
            int id = objects.reserve();
            long firstWindow = mmio.nextOffset();
            Viommu made;
            try {
                IommuViommu viommu = idev.device.driver().allocViommu(idev.device, parent.domain, type,
                        data == null || data.length == 0 ? null : new DriverData(type, data), mmio::reserve);
                made = new Viommu(this, parent, viommu, idev.device.driver());
                made.id(id);
            } catch (RuntimeException e) {
                mmio.claimSince(firstWindow, null);
                objects.release(id);
                throw e;
            }
            mmio.claimSince(firstWindow, made);
            parent.get();
            objects.publish(made);
            return new ViommuAlloc(id, made.viommu.outData());
        });
    }

    @Override
    public int vdeviceAlloc(int viommuId, int devId, long virtId) {
        return vdeviceAlloc(viommuId, devId, new long[] {virtId});
    }

    @Override
    public int vdeviceAlloc(int viommuId, int devId, long[] virtIds) {
        return locked(() -> {
            Viommu viommu = objects.get(viommuId, ObjectType.VIOMMU, Viommu.class);
            IommufdDevice idev = objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            if (idev.device.driver() != viommu.driver) {
                throw IommufdException.of(Errno.EINVAL, "vdevice_alloc: %s is not behind the IOMMU of %s", idev, viommu);
            }
            if (virtIds.length != idev.device.physicalIdCount()) {
                throw IommufdException.of(Errno.EINVAL, "vdevice_alloc: %s has %d physical IDs, %d virtual IDs given",
                        idev, idev.device.physicalIdCount(), virtIds.length);
            }
            if (idev.vdevice != null) {
                throw IommufdException.of(Errno.EEXIST, "vdevice_alloc: %s already has %s", idev, idev.vdevice);
            }
            for (int i = 0; i < virtIds.length; i++) {
                if (viommu.byVirtId.containsKey(virtIds[i])) {
                    throw IommufdException.of(Errno.EEXIST, "vdevice_alloc: virt_id 0x%x is already used in %s", virtIds[i], viommu);
                }
                for (int j = 0; j < i; j++) {
                    if (virtIds[j] == virtIds[i]) {
                        throw IommufdException.of(Errno.EEXIST, "vdevice_alloc: virt_id 0x%x given twice", virtIds[i]);
                    }
                }
            }
            int id = objects.reserve();
            try {
                viommu.viommu.vdeviceInit(idev.device, virtIds);
            } catch (RuntimeException e) {
                objects.release(id);
                throw e;
            }
            Vdevice vdev = new Vdevice(viommu, idev, virtIds);
            vdev.id(id);
            for (long virtId : virtIds) {
                viommu.byVirtId.put(virtId, vdev);
            }
            idev.vdevice = vdev;
            viommu.get();
            objects.publish(vdev);
            return id;
        });
    }

    @Override
    public VeventqAlloc veventqAlloc(int flags, int viommuId, int type, int depth) {
        return locked(() -> {
            if (flags != 0 || type == 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "veventq_alloc: flags 0x%x type %d", flags, type);
            }
            if (depth == 0 || Integer.toUnsignedLong(depth) > (1L << 19)) {
                throw IommufdException.of(Errno.EINVAL, "veventq_alloc: depth %s (1 to 2^19)", Integer.toUnsignedString(depth));
            }
            Viommu viommu = objects.get(viommuId, ObjectType.VIOMMU, Viommu.class);
            if (viommu.eventQueues.containsKey(type)) {
                throw IommufdException.of(Errno.EEXIST, "veventq_alloc: %s already has a queue of type 0x%x", viommu, type);
            }
            Veventq queue = new Veventq(viommu, type, depth);
            queue.id(objects.reserve());
            viommu.get();
            viommu.eventQueues.put(type, queue);
            objects.publish(queue);
            return new VeventqAlloc(queue.id(), queue.openFile(this));
        });
    }

    /**
     * Reports a vIOMMU event of {@code type} for its guest; EOPNOTSUPP when the vIOMMU has no queue
     * of that type (the event is dropped, as the kernel drops it).
     */
    void reportVevent(Viommu viommu, int type, byte[] payload) {
        Veventq queue = viommu.eventQueues.get(type);
        if (queue == null) {
            throw IommufdException.of(Errno.EOPNOTSUPP, "%s has no vEVENTQ of type 0x%x", viommu, type);
        }
        queue.report(payload);
    }

    @Override
    public int hwQueueAlloc(int flags, int viommuId, int type, int index, long nestingParentIova, long lengthBytes) {
        return locked(() -> {
            if (flags != 0 || type == 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "hw_queue_alloc: flags 0x%x type %d", flags, type);
            }
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "hw_queue_alloc: zero length");
            }
            long last = nestingParentIova + lengthBytes - 1;
            if (Long.compareUnsigned(last, nestingParentIova) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "hw_queue_alloc iova=0x%x length=0x%x: wraps", nestingParentIova, lengthBytes);
            }
            Viommu viommu = objects.get(viommuId, ObjectType.VIOMMU, Viommu.class);
            // Pin the CPU pages under the queue through an internal access, and require them contiguous.
            long first = nestingParentIova & -UserMemory.PAGE_BYTES;
            long pinnedBytes = ((last | (UserMemory.PAGE_BYTES - 1)) + 1) - first;
            IoPagetable iopt = viommu.parent.ioas.iopt;
            long[] pages = iopt.accessPin(first, pinnedBytes, false);
            try {
                for (int i = 1; i < pages.length; i++) {
                    if (pages[i] != pages[0] + i * UserMemory.PAGE_BYTES) {
                        throw IommufdException.of(Errno.EFAULT, "hw_queue_alloc: the queue memory is not physically contiguous");
                    }
                }
                long pa = pages[0] + (nestingParentIova - first);
                IommuHwQueue queue = viommu.viommu.hwQueueAlloc(type, index, nestingParentIova, pa, lengthBytes);
                HwQueue dependency = queue.dependsOn() < 0 ? null : viommu.hwQueues.get(List.of(type, queue.dependsOn()));
                HwQueue object = new HwQueue(viommu, queue, type, index, dependency, first, pinnedBytes);
                object.id(objects.reserve());
                iopt.lock(first, pinnedBytes, +1);
                if (dependency != null) {
                    dependency.get();
                }
                viommu.get();
                viommu.hwQueues.put(List.of(type, index), object);
                objects.publish(object);
                return object.id();
            } catch (RuntimeException e) {
                iopt.accessUnpin(first, pinnedBytes);
                throw e;
            }
        });
    }

    @Override
    public MmioMapping mmap(long offset, long lengthBytes) {
        return locked(() -> {
            MemorySegment memory = mmio.map(offset, lengthBytes);
            return new MmioMapping(offset, memory, () -> lockedRun(() -> mmio.unmap(offset)));
        });
    }

    @Override
    public int hwptInvalidate(int hwptId, int dataType, int entryLen, int entryNum, byte[] entries) {
        return locked(() -> {
            if (entryNum != 0 && entryLen == 0) {
                throw IommufdException.of(Errno.EINVAL, "hwpt_invalidate: %d entries of 0 bytes", entryNum).withProgress(0);
            }
            IommufdObject target = objects.find(hwptId);
            if (target == null) {
                throw IommufdException.of(Errno.ENOENT, "hwpt_invalidate: no object with id %d", hwptId).withProgress(0);
            }
            InvalidationBatch batch = new InvalidationBatch(dataType, entryLen, entryNum, entries);
            try {
                return switch (target) {
                    case HwptNested nested -> nested.domain.invalidate(batch);
                    case Viommu viommu -> viommu.viommu.invalidate(batch, viommu::device);
                    default -> throw IommufdException.of(Errno.EINVAL, "hwpt_invalidate: %s is not a nested HWPT or vIOMMU", target)
                            .withProgress(0);
                };
            } catch (InvalidationFailure e) {
                throw IommufdException.from(e).withProgress(e.handled());
            }
        });
    }

    @Override
    public HwInfo getHwInfo(int devId, int flags, int inDataType) {
        return locked(() -> {
            if ((flags & ~HW_INFO_FLAG_INPUT_TYPE) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "get_hw_info: unknown flags 0x%x", flags);
            }
            int type = (flags & HW_INFO_FLAG_INPUT_TYPE) != 0 ? inDataType : DriverHwInfo.TYPE_DEFAULT;
            IommuDevice device = objects.get(devId, ObjectType.DEVICE, IommufdDevice.class).device;
            DriverHwInfo info = device.driver().hwInfo(device, type);
            long caps = (device.dirtyTrackingCapable() ? HW_CAP_DIRTY_TRACKING : 0)
                    | (device.atsCapable() ? 0 : HW_CAP_PCI_ATS_NOT_SUPPORTED);
            return new HwInfo(info.type(), info.bytes(), device.pasidBits(), caps);
        });
    }

    @Override
    public void hwptSetDirtyTracking(int hwptId, int flags) {
        lockedRun(() -> {
            if ((flags & ~DIRTY_TRACKING_ENABLE) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "set_dirty_tracking: unknown flags 0x%x", flags);
            }
            HwptPaging hwpt = objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class);
            if ((hwpt.domain.flags() & HWPT_ALLOC_DIRTY_TRACKING) == 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "set_dirty_tracking: %s was not allocated with DIRTY_TRACKING", hwpt);
            }
            boolean enable = (flags & DIRTY_TRACKING_ENABLE) != 0;
            if (enable) {
                // Start from a clean snapshot: whatever was dirty before tracking does not count.
                for (IoptArea area : hwpt.ioas.iopt.areas()) {
                    DirtyBitmap scratch = new DirtyBitmap(area.iova & -UserMemory.PAGE_BYTES,
                            UserMemory.PAGE_SHIFT, ((area.last - (area.iova & -UserMemory.PAGE_BYTES)) >>> UserMemory.PAGE_SHIFT) + 1);
                    hwpt.domain.readAndClearDirty(area.iova, area.lengthBytes(), scratch, false);
                }
            }
            hwpt.domain.setDirtyTracking(enable);
            hwpt.dirtyTracking = enable;
        });
    }

    @Override
    public DirtyBitmap hwptGetDirtyBitmap(int hwptId, int flags, long iova, long lengthBytes, long pageSize) {
        return locked(() -> {
            if ((flags & ~GET_DIRTY_BITMAP_NO_CLEAR) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "get_dirty_bitmap: unknown flags 0x%x", flags);
            }
            HwptPaging hwpt = objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class);
            long last = iova + lengthBytes - 1;
            if (lengthBytes == 0 || Long.compareUnsigned(last, iova) < 0 || last == -1L) {
                throw IommufdException.of(Errno.EOVERFLOW, "get_dirty_bitmap iova=0x%x length=0x%x: wraps", iova, lengthBytes);
            }
            long alignment = hwpt.ioas.iopt.alignment();
            if (((iova | (last + 1)) & (alignment - 1)) != 0) {
                throw IommufdException.of(Errno.EINVAL, "get_dirty_bitmap iova=0x%x length=0x%x: not aligned to 0x%x", iova, lengthBytes, alignment);
            }
            if (pageSize == 0 || Long.bitCount(pageSize) != 1 || ((iova | (last + 1)) & (pageSize - 1)) != 0) {
                throw IommufdException.of(Errno.EINVAL, "get_dirty_bitmap iova=0x%x length=0x%x: page_size 0x%x unusable",
                        iova, lengthBytes, pageSize);
            }
            if ((hwpt.domain.flags() & HWPT_ALLOC_DIRTY_TRACKING) == 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "get_dirty_bitmap: %s does not track dirty pages", hwpt);
            }
            // lengthBytes is unsigned and may pass 2^63: shift, never divide.
            int pageShift = Long.numberOfTrailingZeros(pageSize);
            DirtyBitmap bitmap = new DirtyBitmap(iova, pageShift, lengthBytes >>> pageShift);
            // Only mapped areas are walked: holes are clean, and the walk never leaves the aperture.
            for (IoptArea area : hwpt.ioas.iopt.areas()) {
                if (Long.compareUnsigned(area.last, iova) < 0 || Long.compareUnsigned(area.iova, last) > 0) {
                    continue;
                }
                long from = Long.compareUnsigned(area.iova, iova) < 0 ? iova : area.iova;
                long to = Long.compareUnsigned(area.last, last) > 0 ? last : area.last;
                hwpt.domain.readAndClearDirty(from, to - from + 1, bitmap, (flags & GET_DIRTY_BITMAP_NO_CLEAR) != 0);
            }
            return bitmap;
        });
    }

    // ---- IOAS_CHANGE_PROCESS --------------------------------------------------------------------------

    @Override
    public void ioasChangeProcess(PinAccounting process) {
        lockedRun(() -> {
            java.util.Set<IoptPages> backings = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (IommufdObject object : objects.all()) {
                if (object instanceof Ioas ioas) {
                    for (IoptArea area : ioas.iopt.areas()) {
                        if (!(area.pages.source() instanceof MemoryFile) && !(area.pages.source() instanceof DmaBuf)) {
                            throw IommufdException.of(Errno.EINVAL, "ioas_change_process: %s of %s is not file-backed", area, ioas);
                        }
                        if (area.pages.accounting() != null) {
                            backings.add(area.pages);
                        }
                    }
                }
            }
            if (process == accounting) {
                return;
            }
            // Charge the new owner first, so a refusal changes nothing; then let the old one go.
            java.util.List<IoptPages> charged = new java.util.ArrayList<>();
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

    private void unbind(IommufdDevice idev) {
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
        } finally {
            lock.unlock();
        }
    }
}
