package dev.jiommu.iommufd;

/** {@link PasidAttachTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
class PasidAttachAbiTest extends PasidAttachTest {
    @Override
    boolean throughAbi() {
        return true;
    }
}
