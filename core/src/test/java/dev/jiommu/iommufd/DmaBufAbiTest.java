package dev.jiommu.iommufd;

/** {@link DmaBufTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class DmaBufAbiTest extends DmaBufTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
