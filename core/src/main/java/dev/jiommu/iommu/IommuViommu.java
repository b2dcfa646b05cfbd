package dev.jiommu.iommu;

import java.util.function.LongFunction;

/**
 * A driver's virtual IOMMU (iommufd's VIOMMU): the slice of one physical IOMMU given to one VM,
 * on a nest-parent stage 2. It owns the VM's cache tags and the virtual-to-physical device table,
 * allocates nested domains that share them, and runs the guest's cache invalidations.
 */
public interface IommuViommu {
    /** {@return the vIOMMU type ({@code IOMMU_VIOMMU_TYPE_*})} */
    int type();

    /** {@return the stage 2 under every nested domain of this vIOMMU} */
    IommuPagingDomain parent();

    /** {@return the driver payload written back to the caller at allocation (empty if none)} */
    byte[] outData();

    /** Allocates a nested domain of this vIOMMU for {@code device} from the guest's {@code data}. */
    IommuNestedDomain allocNestedDomain(IommuDevice device, int flags, DriverData data);

    /** Records that {@code device} is known to the guest as {@code virtIds} (one per physical ID). */
    void vdeviceInit(IommuDevice device, long[] virtIds);

    /** Forgets a device's virtual IDs. */
    void vdeviceDestroy(IommuDevice device);

    /**
     * Runs the guest's invalidation entries (which name devices by virtual ID) in order.
     *
     * @param devices resolves a virtual ID to its physical device, or null
     * @return the entries handled
     * @throws InvalidationFailure at the first bad entry, carrying how many went before it
     */
    int invalidate(InvalidationBatch batch, LongFunction<IommuDevice> devices);

    /**
     * Sets up hardware queue {@code index} of {@code type} over [pa, pa + lengthBytes) of pinned,
     * physically contiguous guest memory whose stage-2 address is {@code parentIova}. A vIOMMU
     * without queues, or not knowing {@code type}, answers EOPNOTSUPP.
     */
    IommuHwQueue hwQueueAlloc(int type, int index, long parentIova, long pa, long lengthBytes);

    void free();
}
