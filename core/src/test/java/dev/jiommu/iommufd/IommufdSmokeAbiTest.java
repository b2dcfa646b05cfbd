package dev.jiommu.iommufd;

/** {@link IommufdSmokeTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class IommufdSmokeAbiTest extends IommufdSmokeTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
