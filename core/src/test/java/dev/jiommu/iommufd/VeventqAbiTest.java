package dev.jiommu.iommufd;

/** {@link VeventqTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class VeventqAbiTest extends VeventqTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
