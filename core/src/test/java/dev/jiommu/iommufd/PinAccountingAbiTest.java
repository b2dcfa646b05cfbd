package dev.jiommu.iommufd;

/** {@link PinAccountingTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class PinAccountingAbiTest extends PinAccountingTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
