package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link IommufdIoasTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdIoasTest.Variant.class)
class IommufdIoasAbiTest extends IommufdIoasTest {
    IommufdIoasAbiTest(Variant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
