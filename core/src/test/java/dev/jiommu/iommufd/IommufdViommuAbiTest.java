package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link IommufdViommuTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdViommuTest.Variant.class)
class IommufdViommuAbiTest extends IommufdViommuTest {
    IommufdViommuAbiTest(Variant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
