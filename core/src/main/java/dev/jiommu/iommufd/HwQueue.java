package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuHwQueue;

import java.util.List;

/**
 * A HW_QUEUE object: a driver queue in guest memory, pinned and locked in the vIOMMU's stage-2
 * IOAS for as long as it lives (unmap over it is EBUSY). Holds its vIOMMU and the queue it depends on.
 */
final class HwQueue extends IommufdObject {
    final Viommu viommu;
    final IommuHwQueue queue;
    final int type;
    final int index;
    final HwQueue dependency;
    final long pinnedIova;
    final long pinnedBytes;

    HwQueue(Viommu viommu, IommuHwQueue queue, int type, int index, HwQueue dependency, long pinnedIova, long pinnedBytes) {
        super(ObjectType.HW_QUEUE);
        this.viommu = viommu;
        this.queue = queue;
        this.type = type;
        this.index = index;
        this.dependency = dependency;
        this.pinnedIova = pinnedIova;
        this.pinnedBytes = pinnedBytes;
    }

    @Override
    void destroy() {
        queue.free();
        Ioas ioas = viommu.parent.ioas;
        ioas.iopt.lock(pinnedIova, pinnedBytes, -1);
        ioas.iopt.accessUnpin(pinnedIova, pinnedBytes);
        viommu.hwQueues.remove(List.of(type, index));
        if (dependency != null) {
            dependency.put();
        }
        viommu.put();
    }
}
