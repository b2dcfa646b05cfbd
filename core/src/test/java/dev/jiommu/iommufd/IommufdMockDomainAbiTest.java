package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link IommufdMockDomainTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass
@EnumSource(IommufdMockDomainTest.MockDomainVariant.class)
class IommufdMockDomainAbiTest extends IommufdMockDomainTest {
    IommufdMockDomainAbiTest(MockDomainVariant variant) {
        super(variant);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
