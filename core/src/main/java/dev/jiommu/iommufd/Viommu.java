package dev.jiommu.iommufd;

import dev.jiommu.iommu.IommuDevice;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommu.IommuViommu;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A vIOMMU object: the driver's {@link IommuViommu} on a nest-parent HWPT (which it holds), and the
 * table of its vDEVICEs by virtual ID. Guarded by the context lock.
 */
final class Viommu extends IommufdObject {
    final HwptPaging parent;
    final IommuViommu viommu;
    final IommuDriver driver;
    /** Virtual ID → the vDEVICE that holds it (a multi-ID device appears once per ID). */
    final Map<Long, Vdevice> byVirtId = new HashMap<>();
    /** HW queues by (type, index). */
    final Map<List<Integer>, HwQueue> hwQueues = new HashMap<>();
    /** Event queues by type (one per type). */
    final Map<Integer, Veventq> eventQueues = new HashMap<>();
    private final IommufdContext context;

    Viommu(IommufdContext context, HwptPaging parent, IommuViommu viommu, IommuDriver driver) {
        super(ObjectType.VIOMMU);
        this.context = context;
        this.parent = parent;
        this.viommu = viommu;
        this.driver = driver;
    }

    /** {@return the physical device the guest calls {@code virtId}, or null} */
    IommuDevice device(long virtId) {
        Vdevice vdev = byVirtId.get(virtId);
        return vdev == null ? null : vdev.idev.device;
    }

    @Override
    void destroy() {
        context.mmio.unregister(this);
        viommu.free();
        parent.put();
    }
}
