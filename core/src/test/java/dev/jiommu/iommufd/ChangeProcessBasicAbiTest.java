package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link ChangeProcessBasicTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass(name = "{0}")
@EnumSource(ChangeProcessBasicTest.Variant.class)
class ChangeProcessBasicAbiTest extends ChangeProcessBasicTest {
    ChangeProcessBasicAbiTest(Variant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
