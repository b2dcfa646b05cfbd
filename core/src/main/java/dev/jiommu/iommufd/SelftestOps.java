package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.SelftestDeviceCaches;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.iommu.SelftestDomain;
import dev.jiommu.iommu.SelftestNestedDomain;
import dev.jiommu.mem.DmaBuf;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.PageTable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The IOMMU_TEST_CMD operations of iommufd core I, over a context and its mock bus (the kernel's
 * selftest.c, minus the mock driver itself, which lives in driver.mock behind the SPI).
 */
final class SelftestOps implements IommufdSelftest {
    private static final long PAGE_BYTES = UserMemory.PAGE_BYTES;

    private final IommufdContext context;
    /** Access handles ("fds") → accesses. Guarded by the context lock. */
    private final Map<Integer, IommufdAccess> accesses = new HashMap<>();
    private int nextAccessFd = 1;
    private int tempMemoryLimitBytes = 65536;
    /** Test dma-bufs this context exported ("fds" closed with the context). Guarded by the context lock. */
    private final List<DmaBuf> dmaBufs = new ArrayList<>();

    SelftestOps(IommufdContext context) {
        this.context = context;
    }

    @Override
    public void addReserved(int ioasId, long start, long lengthBytes) {
        context.lockedRun(() -> {
            context.selftestBus();
            Ioas ioas = context.ioas(ioasId);
            if (lengthBytes == 0) {
                throw IommufdException.of(Errno.EINVAL, "add_reserved: zero length");
            }
            long last = start + lengthBytes - 1;
            if (Long.compareUnsigned(last, start) < 0) {
                throw IommufdException.of(Errno.EOVERFLOW, "add_reserved start=0x%x length=0x%x: wraps", start, lengthBytes);
            }
            ioas.iopt.addReserved(start, last, null);
        });
    }

    @Override
    public MockDomain mockDomain(int ptId) {
        return mockDomainFlags(ptId, 0);
    }

    @Override
    public MockDomain mockDomainFlags(int ptId, int deviceFlags) {
        return context.locked(() -> {
            SelftestDevices bus = context.selftestBus();
            if ((deviceFlags & ~SelftestDevices.ALL_FLAGS) != 0) {
                throw IommufdException.of(Errno.EINVAL, "mock_domain_flags: unknown device flags 0x%x", deviceFlags);
            }
            ObjectTable objects = context.objects;
            int stdevId = objects.reserve();
            int idevId = objects.reserve();
            IommuDevice device = bus.createDevice(deviceFlags);
            IommufdDevice idev = context.bind(device, idevId);
            Hwpt hwpt;
            try {
                hwpt = context.attachments.attach(idev, IommuDriver.NO_PASID, ptId);
            } catch (RuntimeException e) {
                bus.removeDevice(device);
                objects.release(idevId);
                objects.release(stdevId);
                throw e;
            }
            SelftestDevice st = new SelftestDevice(context, idev);
            st.id(stdevId);
            objects.publish(idev);
            objects.publish(st);
            return new MockDomain(stdevId, hwpt.id(), idevId);
        });
    }

    @Override
    public int mockDomainReplace(int stdevId, int ptId) {
        return context.locked(() -> {
            return context.attachments.replace(selftestDevice(stdevId).idev, IommuDriver.NO_PASID, ptId).id();
        });
    }

    @Override
    public int pasidAttach(int stdevId, int pasid, int ptId) {
        return context.locked(() -> context.attachments.attach(selftestDevice(stdevId).idev, pasid, ptId).id());
    }

    @Override
    public int pasidReplace(int stdevId, int pasid, int ptId) {
        return context.locked(() -> context.attachments.replace(selftestDevice(stdevId).idev, pasid, ptId).id());
    }

    @Override
    public void pasidDetach(int stdevId, int pasid) {
        context.lockedRun(() -> context.attachments.detach(selftestDevice(stdevId).idev, pasid));
    }

    @Override
    public void pasidCheckHwpt(int stdevId, int pasid, int hwptId) {
        context.lockedRun(() -> {
            Hwpt attached = selftestDevice(stdevId).idev.attached.get(pasid);
            int actual = attached == null ? 0 : attached.id();
            if (actual != hwptId) {
                throw IommufdException.of(Errno.EINVAL, "pasid_check_hwpt: pasid %d is attached to %d, not %d", pasid, actual, hwptId);
            }
        });
    }

    private SelftestDevice selftestDevice(int stdevId) {
        return context.objects.get(stdevId, ObjectType.SELFTEST, SelftestDevice.class);
    }

    @Override
    public void mdCheckMap(int hwptId, long iova, long lengthBytes, long uptr) {
        context.lockedRun(() -> {
            HwptPaging hwpt = context.objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class);
            long granule = Long.lowestOneBit(hwpt.domain.pageSizes());
            if (((iova | lengthBytes | uptr) & (granule - 1)) != 0
                    || Long.compareUnsigned(uptr + lengthBytes, uptr) < 0) {
                throw IommufdException.of(Errno.EINVAL, "md_check_map iova=0x%x length=0x%x uptr=0x%x: not aligned to 0x%x",
                        iova, lengthBytes, uptr, granule);
            }
            UserMemory user = context.userMemory();
            for (long off = 0; Long.compareUnsigned(off, lengthBytes) < 0; off += granule) {
                long expected = user.physicalAddress(uptr + off);
                long actual = hwpt.domain.iovaToPhys(iova + off);
                if (actual == PageTable.NOT_MAPPED || actual != expected) {
                    throw IommufdException.of(Errno.EINVAL, "md_check_map: iova 0x%x translates to 0x%x, the memory at va 0x%x is at 0x%x",
                            iova + off, actual, uptr + off, expected);
                }
            }
        });
    }

    @Override
    public void mdCheckIotlb(int hwptId, int slot, int iotlb) {
        context.lockedRun(() -> {
            HwptNested hwpt = context.objects.get(hwptId, ObjectType.HWPT_NESTED, HwptNested.class);
            if (!(hwpt.domain instanceof SelftestNestedDomain mock)) {
                throw IommufdException.of(Errno.EINVAL, "md_check_iotlb: %s is not a mock nested domain", hwpt);
            }
            int actual = mock.iotlb(slot);
            if (actual != iotlb) {
                throw IommufdException.of(Errno.EINVAL, "md_check_iotlb: slot %d holds 0x%x, not 0x%x", slot, actual, iotlb);
            }
        });
    }

    @Override
    public void triggerIopf(int devId, int pasid, int grpid, int perm, long addr) {
        context.lockedRun(() -> {
            IommufdDevice idev = context.objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            int flags = FaultQueue.FLAG_LAST_PAGE | (pasid != 0 ? FaultQueue.FLAG_PASID_VALID : 0);
            int slot = pasid != 0 ? pasid : IommuDriver.NO_PASID;
            context.viommus.reportFault(idev, slot, List.of(new FaultQueue.Fault(flags, devId, pasid, grpid, perm, addr)));
        });
    }

    @Override
    public void triggerVevent(int devId) {
        context.lockedRun(() -> {
            IommufdDevice idev = context.objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            if (!(idev.rid() instanceof HwptNested nested) || nested.viommu == null || idev.vdevice == null
                    || idev.vdevice.viommu != nested.viommu) {
                throw IommufdException.of(Errno.ENOENT, "trigger_vevent: %s is not attached through a vIOMMU where it has a vDEVICE", idev);
            }
            long virtId = idev.vdevice.virtIds[0];
            byte[] payload = {(byte) virtId, (byte) (virtId >>> 8), (byte) (virtId >>> 16), (byte) (virtId >>> 24)};
            context.viommus.reportVevent(nested.viommu, VEVENTQ_TYPE_SELFTEST, payload);
        });
    }

    @Override
    public void devCheckCache(int devId, int slot, int cache) {
        context.lockedRun(() -> {
            IommufdDevice idev = context.objects.get(devId, ObjectType.DEVICE, IommufdDevice.class);
            if (!(idev.device instanceof SelftestDeviceCaches mock)) {
                throw IommufdException.of(Errno.EINVAL, "dev_check_cache: %s is not a mock device", idev);
            }
            int actual = mock.cache(slot);
            if (actual != cache) {
                throw IommufdException.of(Errno.EINVAL, "dev_check_cache: slot %d holds 0x%x, not 0x%x", slot, actual, cache);
            }
        });
    }

    @Override
    public void mdCheckRefs(long uptr, long lengthBytes, int refs) {
        context.lockedRun(() -> {
            if (((uptr | lengthBytes) & (PAGE_BYTES - 1)) != 0 || Long.compareUnsigned(uptr + lengthBytes, uptr) < 0) {
                throw IommufdException.of(Errno.EINVAL, "md_check_refs uptr=0x%x length=0x%x: not page aligned, or wraps",
                        uptr, lengthBytes);
            }
            UserMemory user = context.userMemory();
            for (long off = 0; Long.compareUnsigned(off, lengthBytes) < 0; off += PAGE_BYTES) {
                user.physicalAddress(uptr + off); // an unmapped page is EFAULT, as get_user_pages_fast says
                int pins = user.pinCount(uptr + off);
                if (pins != refs) {
                    throw IommufdException.of(Errno.EIO, "md_check_refs: page va 0x%x has %d pins, expected %d", uptr + off, pins, refs);
                }
            }
        });
    }

    @Override
    public int createAccess(int ioasId, int flags) {
        return context.locked(() -> {
            context.selftestBus();
            if ((flags & ~ACCESS_CREATE_NEEDS_PIN_PAGES) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "create_access: unknown flags 0x%x", flags);
            }
            Ioas ioas = context.ioas(ioasId);
            boolean pinCapable = (flags & ACCESS_CREATE_NEEDS_PIN_PAGES) != 0;
            IommufdAccess access = new IommufdAccess(ioas, pinCapable);
            int id = context.objects.reserve();
            access.id(id);
            try {
                ioas.iopt.addAccess(access, pinCapable);
            } catch (RuntimeException e) {
                context.objects.release(id);
                throw e;
            }
            ioas.get();
            access.get(); // the access's owner holds it: DESTROY of its ID is EBUSY
            context.objects.publish(access);
            int fd = nextAccessFd++;
            accesses.put(fd, access);
            return fd;
        });
    }

    @Override
    public void closeAccess(int accessFd) {
        context.lockedRun(() -> closeLocked(accessFd, access(accessFd)));
    }

    private void closeLocked(int fd, IommufdAccess access) {
        accesses.remove(fd);
        access.put();
        access.destroy();
        context.objects.release(access.id());
    }

    /** Closes every access handle (context close: the fds go with it). */
    void closeAllAccesses() {
        for (Map.Entry<Integer, IommufdAccess> e : List.copyOf(accesses.entrySet())) {
            closeLocked(e.getKey(), e.getValue());
        }
    }

    private IommufdAccess access(int fd) {
        IommufdAccess access = accesses.get(fd);
        if (access == null) {
            throw IommufdException.of(Errno.EBADF, "no access with fd %d", fd);
        }
        return access;
    }

    @Override
    public void destroyAccessPages(int accessFd, int accessPagesId) {
        context.lockedRun(() -> access(accessFd).destroyItem(accessPagesId));
    }

    @Override
    public int accessPages(int accessFd, int flags, long iova, long lengthBytes, long uptr) {
        return context.locked(() -> {
            IommufdAccess access = access(accessFd);
            if ((flags & ~(ACCESS_PAGES_WRITE | FLAGS_SYZ)) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "access_pages: unknown flags 0x%x", flags);
            }
            if (Long.compareUnsigned(lengthBytes, ACCESS_MAX_BYTES) > 0) {
                throw IommufdException.of(Errno.ENOMEM, "access_pages: length 0x%x above 16 MiB", lengthBytes);
            }
            if (!access.pinCapable) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "access_pages: the access was not created to pin pages");
            }
            long[] physical = access.ioas.iopt.accessPin(iova, lengthBytes, (flags & ACCESS_PAGES_WRITE) != 0);
            if (uptr != 0) {
                for (int i = 0; i < physical.length; i++) {
                    long expected;
                    try {
                        expected = context.userMemory().physicalAddress(uptr + i * PAGE_BYTES);
                    } catch (RuntimeException e) {
                        access.ioas.iopt.accessUnpin(iova, lengthBytes);
                        throw e;
                    }
                    if (physical[i] != expected) {
                        access.ioas.iopt.accessUnpin(iova, lengthBytes);
                        throw IommufdException.of(Errno.EBADE, "access_pages: page %d pinned at 0x%x, the memory at va 0x%x is at 0x%x",
                                i, physical[i], uptr + i * PAGE_BYTES, expected);
                    }
                }
            }
            return access.addItem(iova, lengthBytes);
        });
    }

    @Override
    public void accessRw(int accessFd, long iova, long lengthBytes, long uptr, int flags) {
        context.lockedRun(() -> {
            IommufdAccess access = access(accessFd);
            if ((flags & ~(ACCESS_RW_WRITE | ACCESS_RW_SLOW_PATH | FLAGS_SYZ)) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "access_rw: unknown flags 0x%x", flags);
            }
            if (Long.compareUnsigned(lengthBytes, ACCESS_MAX_BYTES) > 0) {
                throw IommufdException.of(Errno.ENOMEM, "access_rw: length 0x%x above 16 MiB", lengthBytes);
            }
            UserMemory user = context.userMemory();
            boolean write = (flags & ACCESS_RW_WRITE) != 0;
            byte[] buffer = write ? user.read(uptr, (int) lengthBytes) : new byte[(int) lengthBytes];
            access.ioas.iopt.accessRw(iova, buffer, write, user.physicalMemory());
            if (!write) {
                user.write(uptr, buffer);
            }
        });
    }

    @Override
    public long dirty(int hwptId, int flags, long iova, long lengthBytes, long pageSize, long uptr) {
        return context.locked(() -> {
            HwptPaging hwpt = context.objects.get(hwptId, ObjectType.HWPT_PAGING, HwptPaging.class);
            if (pageSize == 0 || lengthBytes == 0 || uptr == 0 || lengthBytes % pageSize != 0 || iova % pageSize != 0) {
                throw IommufdException.of(Errno.EINVAL, "dirty iova=0x%x length=0x%x page_size=0x%x uptr=0x%x: unusable",
                        iova, lengthBytes, pageSize, uptr);
            }
            long bits = lengthBytes / pageSize;
            if (bits > (1L << 27)) {
                throw IommufdException.of(Errno.EOVERFLOW, "dirty: %d bits, at most 2^27", bits);
            }
            if (!(hwpt.domain instanceof SelftestDomain mockDomain)) {
                throw IommufdException.of(Errno.EINVAL, "dirty: %s is not a mock domain", hwpt);
            }
            if (!hwpt.dirtyTracking) {
                throw IommufdException.of(Errno.EINVAL, "dirty: tracking is not enabled on %s", hwpt);
            }
            byte[] bitmap = context.userMemory().read(uptr, (int) ((bits + 7) / 8));
            // out_nr_dirty counts the bits set, as the kernel's selftest.c does, not the bits read.
            long marked = 0;
            for (long i = 0; i < bits; i++) {
                if ((bitmap[(int) (i >>> 3)] & (1 << (i & 7))) != 0) {
                    mockDomain.markDirty(iova + i * pageSize);
                    marked++;
                }
            }
            return marked;
        });
    }

    @Override
    public DmaBuf dmabufGet(long lengthBytes) {
        return context.locked(() -> {
            long rounded = (lengthBytes + PAGE_BYTES - 1) & -PAGE_BYTES;
            if (lengthBytes <= 0 || rounded > 512 * PAGE_BYTES) {
                throw IommufdException.of(Errno.EINVAL, "dmabuf_get: length %d (1 byte to 512 pages)", lengthBytes);
            }
            DmaBuf buf = new DmaBuf(context.userMemory().physicalMemory(), rounded);
            dmaBufs.add(buf);
            return buf;
        });
    }

    @Override
    public void dmabufRevoke(DmaBuf buf, boolean revoked) {
        context.lockedRun(() -> {
            if (!dmaBufs.contains(buf)) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "dmabuf_revoke: not a test dma-buf of this context");
            }
            buf.revoke(revoked);
        });
    }

    /** Releases the test dma-bufs (their fds close with the context), once nothing maps them. */
    void releaseDmaBufs() {
        for (DmaBuf buf : dmaBufs) {
            buf.release();
        }
        dmaBufs.clear();
    }

    @Override
    public void setTempMemoryLimit(int limitBytes) {
        context.lockedRun(() -> {
            if (limitBytes < 12) {
                throw IommufdException.of(Errno.EINVAL, "set_temp_memory_limit %d: below 12 bytes", limitBytes);
            }
            // Pinning here is not batched through a temporary buffer, so the limit changes no path;
            // it is validated and kept as the kernel keeps it.
            tempMemoryLimitBytes = limitBytes;
        });
    }

    @Override
    public void accessReplaceIoas(int accessFd, int ioasId) {
        context.lockedRun(() -> {
            IommufdAccess access = access(accessFd);
            Ioas next = context.ioas(ioasId);
            if (next == access.ioas) {
                return;
            }
            next.iopt.addAccess(access, access.pinCapable);
            access.releaseAll();
            access.ioas.iopt.removeAccess(access, access.pinCapable);
            access.ioas.put();
            next.get();
            access.ioas = next;
        });
    }

    @Override
    public String toString() {
        return "selftest ops, accesses " + Arrays.toString(accesses.keySet().toArray());
    }
}
