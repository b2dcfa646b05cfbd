package dev.jiommu.iommu;

/** What the selftest's DEV_CHECK_CACHE reads of a mock device: its four cache slots. */
public interface SelftestDeviceCaches {
    /** {@return the value of cache slot {@code id}} @throws dev.jiommu.errno.ErrnoException EINVAL past the last */
    int cache(int id);
}
