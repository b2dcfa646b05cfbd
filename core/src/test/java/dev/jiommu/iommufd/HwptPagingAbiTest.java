package dev.jiommu.iommufd;

/** {@link HwptPagingTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class HwptPagingAbiTest extends HwptPagingTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
