package dev.jiommu.iommufd;

/**
 * A vDEVICE: a bound device as one vIOMMU's guest knows it, by one virtual ID per physical ID (a
 * PCI device has one; a platform device with several stream IDs has one each). Holds its vIOMMU.
 */
final class Vdevice extends IommufdObject {
    final Viommu viommu;
    final IommufdDevice idev;
    final long[] virtIds;

    Vdevice(Viommu viommu, IommufdDevice idev, long[] virtIds) {
        super(ObjectType.VDEVICE);
        this.viommu = viommu;
        this.idev = idev;
        this.virtIds = virtIds.clone();
    }

    @Override
    void destroy() {
        viommu.viommu.vdeviceDestroy(idev.device);
        for (long virtId : virtIds) {
            viommu.byVirtId.remove(virtId);
        }
        idev.vdevice = null;
        viommu.put();
    }
}
