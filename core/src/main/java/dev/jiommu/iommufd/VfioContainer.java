package dev.jiommu.iommufd;

import java.util.List;

/**
 * The VFIO type1 container ioctls as iommufd answers them on the same context, against the compat
 * IOAS (iommufd-uapi.md §7). ENODEV when no compat IOAS is selected.
 */
public interface VfioContainer {
    int VFIO_API_VERSION = 0;
    int TYPE1_IOMMU = 1;
    int TYPE1V2_IOMMU = 3;
    int DMA_CC_IOMMU = 4;
    int NOIOMMU_IOMMU = 8;
    int UNMAP_ALL = 9;
    int DMA_MAP_READ = 1;
    int DMA_MAP_WRITE = 1 << 1;
    int DMA_UNMAP_FLAG_ALL = 1 << 1;

    /** VFIO_GET_API_VERSION. */
    int apiVersion();

    /** VFIO_CHECK_EXTENSION: {@return 1 when supported, 0 otherwise} */
    int checkExtension(int extension);

    /** VFIO_SET_IOMMU with TYPE1 (huge pages off, splitting allowed) or TYPE1v2; another type is EINVAL, before ENODEV. */
    void setIommu(int type);

    /** What VFIO_IOMMU_GET_INFO reports before the ABI layer packs it into argsz. */
    record Info(long iovaPageSizes, List<IovaRange> iovaRanges, int dmaAvailable) {
    }

    /** VFIO_IOMMU_GET_INFO. */
    Info info();

    /** VFIO_IOMMU_MAP_DMA: fixed map with mm accounting; neither READ nor WRITE is allowed here. */
    void mapDma(int flags, long vaddr, long iova, long sizeBytes);

    /**
     * VFIO_IOMMU_UNMAP_DMA: {@return the bytes unmapped (0 is success)}. A failure of the unmap itself
     * (zero size, overflow, an area sticking out, a locked area) carries the bytes already unmapped
     * in {@link IommufdException#progressBytes()}, which the kernel writes back; a failure before it
     * (flags, no compat IOAS, a split refused) carries -1.
     */
    long unmapDma(int flags, long iova, long sizeBytes);
}
