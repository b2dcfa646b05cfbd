package dev.jiommu.iommufd;

/**
 * Test-side access to the partial progress an {@link IommufdException} carries, for an
 * {@link Iommufd} rebuilt from the bytes of the ABI ({@code dev.jiommu.abi.AbiIommufd}): the
 * progress setters are package-private in the product, where only the core reports progress.
 */
public final class AbiProgress {
    private AbiProgress() {
    }

    /** {@return {@code e} carrying HWPT_INVALIDATE's entry_num as written back} */
    public static IommufdException withProgress(IommufdException e, int handled) {
        return e.withProgress(handled);
    }

    /** {@return {@code e} carrying VFIO UNMAP_DMA's size as written back} */
    public static IommufdException withProgressBytes(IommufdException e, long bytes) {
        return e.withProgressBytes(bytes);
    }
}
