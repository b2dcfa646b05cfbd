package dev.jiommu.iommufd;

/** {@link NoIommuGetPaTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class NoIommuGetPaAbiTest extends NoIommuGetPaTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
