package dev.jiommu.iommufd;

/** {@link ViommuTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class ViommuAbiTest extends ViommuTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
