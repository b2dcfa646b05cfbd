package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link IommufdDirtyTrackingTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdDirtyTrackingTest.Variant.class)
class IommufdDirtyTrackingAbiTest extends IommufdDirtyTrackingTest {
    IommufdDirtyTrackingAbiTest(Variant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
