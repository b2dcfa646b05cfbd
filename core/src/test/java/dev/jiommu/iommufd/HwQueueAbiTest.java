package dev.jiommu.iommufd;

/** {@link HwQueueTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class HwQueueAbiTest extends HwQueueTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
