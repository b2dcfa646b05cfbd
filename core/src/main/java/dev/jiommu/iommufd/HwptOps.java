package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.iommu.InvalidationBatch;
import dev.jiommu.iommu.InvalidationFailure;
import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuNestedDomain;
import dev.jiommu.mem.UserMemory;
import dev.jiommu.pt.DirtyBitmap;

import java.util.function.Supplier;

import static dev.jiommu.iommufd.Iommufd.*;

/**
 * Hardware page tables: HWPT_ALLOC (paging and nested), GET_HW_INFO, dirty tracking and
 * HWPT_INVALIDATE (the kernel's hw_pagetable.c).
 *
 * <p>Every method runs under the context lock, like the handlers it stands for.
 */
final class HwptOps {
    private final IommufdContext context;
    private final ObjectTable objects;

    HwptOps(IommufdContext context) {
        this.context = context;
        this.objects = context.objects;
    }

    private <T> T locked(Supplier<T> op) {
        return context.locked(op);
    }

    private void lockedRun(Runnable op) {
        context.lockedRun(op);
    }


    int hwptAlloc(int flags, int devId, int ptId, int dataType, byte[] data, int faultId) {
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
            HwptPaging hwpt = context.createPaging(ioas, idev.device, flags & ~HWPT_ALLOC_FAULT_ID_VALID, payload, false);
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

    int hwptInvalidate(int hwptId, int dataType, int entryLen, int entryNum, byte[] entries) {
        return locked(() -> {
            if (entryNum != 0 && (entries == null || entryLen == 0)) {
                throw IommufdException.of(Errno.EINVAL, "hwpt_invalidate: %d entries %s", entryNum,
                        entries == null ? "at a null data_uptr" : "of 0 bytes").withProgress(0);
            }
            IommufdObject target = objects.find(hwptId);
            if (target == null) {
                throw IommufdException.of(Errno.ENOENT, "hwpt_invalidate: no object with id %d", hwptId).withProgress(0);
            }
            InvalidationBatch batch = new InvalidationBatch(dataType, entryLen, entryNum, entries == null ? new byte[0] : entries);
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

    Iommufd.HwInfo getHwInfo(int devId, int flags, int inDataType) {
        return locked(() -> {
            if ((flags & ~HW_INFO_FLAG_INPUT_TYPE) != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "get_hw_info: unknown flags 0x%x", flags);
            }
            int type = (flags & HW_INFO_FLAG_INPUT_TYPE) != 0 ? inDataType : DriverHwInfo.TYPE_DEFAULT;
            IommuDevice device = objects.get(devId, ObjectType.DEVICE, IommufdDevice.class).device;
            DriverHwInfo info = device.driver().hwInfo(device, type);
            long caps = (device.dirtyTrackingCapable() ? HW_CAP_DIRTY_TRACKING : 0)
                    | (device.atsCapable() ? 0 : HW_CAP_PCI_ATS_NOT_SUPPORTED);
            return new Iommufd.HwInfo(info.type(), info.bytes(), device.pasidBits(), caps);
        });
    }

    void hwptSetDirtyTracking(int hwptId, int flags) {
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

    DirtyBitmap hwptGetDirtyBitmap(int hwptId, int flags, long iova, long lengthBytes, long pageSize) {
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
}
