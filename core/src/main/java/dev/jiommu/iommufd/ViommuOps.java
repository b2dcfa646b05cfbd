package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.DriverData;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuHwQueue;
import dev.jiommu.iommu.IommuViommu;
import dev.jiommu.mem.UserMemory;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Supplier;

import static dev.jiommu.iommufd.Iommufd.*;

/**
 * Fault queues, vIOMMUs, vDEVICEs, vEVENTQs, HW queues and MMIO windows (the kernel's viommu.c
 * and eventq.c).
 *
 * <p>Every method runs under the context lock, like the handlers it stands for.
 */
final class ViommuOps {
    private final IommufdContext context;
    private final ObjectTable objects;

    ViommuOps(IommufdContext context) {
        this.context = context;
        this.objects = context.objects;
    }

    private <T> T locked(Supplier<T> op) {
        return context.locked(op);
    }

    private void lockedRun(Runnable op) {
        context.lockedRun(op);
    }


    Iommufd.FaultQueueAlloc faultQueueAlloc(int flags) {
        return locked(() -> {
            if (flags != 0) {
                throw IommufdException.of(Errno.EOPNOTSUPP, "fault_queue_alloc: flags 0x%x", flags);
            }
            FaultQueue queue = new FaultQueue();
            queue.id(objects.reserve());
            objects.publish(queue);
            return new Iommufd.FaultQueueAlloc(queue.id(), queue.openFile(context));
        });
    }

    /**
     * Delivers a page-request group from (device, pasid) to the fault queue of the HWPT attached
     * there. When nothing is attached at that PASID and the guest owns the device's PASID table, the
     * request belongs to the nested HWPT on the RID, whose attachment the group then rides on.
     * {@return whether a fault queue took the group}: when none can, the IOMMU core answers the
     * device itself (the kernel's iommu_report_device_fault responds INVALID), which is no error
     * for whoever raised the fault (the reference kernel's TRIGGER_IOPF returns 0 then).
     */
    boolean reportFault(IommufdDevice idev, int pasid, List<FaultQueue.Fault> faults) {
        int slot = pasid;
        Hwpt hwpt = idev.attached.get(pasid);
        if (hwpt == null && pasid != IommuDriver.NO_PASID && idev.device.driver().userPasidTable()
                && idev.rid() instanceof HwptNested) {
            slot = IommuDriver.NO_PASID;
            hwpt = idev.rid();
        }
        if (hwpt == null || hwpt.fault == null) {
            return false;
        }
        hwpt.fault.report(new FaultQueue.Group(faults, idev, slot));
        return true;
    }

    // ---- vIOMMU, vDEVICE, MMIO windows ---------------------------------------------------------------

    Iommufd.ViommuAlloc viommuAlloc(int flags, int type, int devId, int hwptId, byte[] data) {
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
            long firstWindow = context.mmio.nextOffset();
            Viommu made;
            try {
                IommuViommu viommu = idev.device.driver().allocViommu(idev.device, parent.domain, type,
                        data == null || data.length == 0 ? null : new DriverData(type, data), context.mmio::reserve);
                made = new Viommu(context, parent, viommu, idev.device.driver());
                made.id(id);
            } catch (RuntimeException e) {
                context.mmio.claimSince(firstWindow, null);
                objects.release(id);
                throw e;
            }
            context.mmio.claimSince(firstWindow, made);
            parent.get();
            objects.publish(made);
            return new Iommufd.ViommuAlloc(id, made.viommu.outData());
        });
    }

    int vdeviceAlloc(int viommuId, int devId, long virtId) {
        return vdeviceAlloc(viommuId, devId, new long[] {virtId});
    }

    int vdeviceAlloc(int viommuId, int devId, long[] virtIds) {
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

    Iommufd.VeventqAlloc veventqAlloc(int flags, int viommuId, int type, int depth) {
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
            return new Iommufd.VeventqAlloc(queue.id(), queue.openFile(context));
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

    int hwQueueAlloc(int flags, int viommuId, int type, int index, long nestingParentIova, long lengthBytes) {
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

    Iommufd.MmioMapping mmap(long offset, long lengthBytes) {
        return locked(() -> {
            MemorySegment memory = context.mmio.map(offset, lengthBytes);
            return new Iommufd.MmioMapping(offset, memory, () -> lockedRun(() -> context.mmio.unmap(offset)));
        });
    }
}
