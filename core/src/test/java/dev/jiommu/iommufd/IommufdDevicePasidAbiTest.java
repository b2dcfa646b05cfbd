package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link IommufdDevicePasidTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdDevicePasidTest.Variant.class)
class IommufdDevicePasidAbiTest extends IommufdDevicePasidTest {
    IommufdDevicePasidAbiTest(Variant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
