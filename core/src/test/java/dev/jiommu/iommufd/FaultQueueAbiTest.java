package dev.jiommu.iommufd;

/** {@link FaultQueueTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class FaultQueueAbiTest extends FaultQueueTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
