package dev.jiommu.iommufd;

/** {@link HwptNestedTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class HwptNestedAbiTest extends HwptNestedTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
