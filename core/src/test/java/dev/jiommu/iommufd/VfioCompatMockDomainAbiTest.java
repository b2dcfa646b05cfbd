package dev.jiommu.iommufd;

import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/** {@link VfioCompatMockDomainTest} again, every call through the ABI ({@link dev.jiommu.abi.AbiIommufd}). */
@ParameterizedClass
@EnumSource(VfioCompatMockDomainTest.Version.class)
class VfioCompatMockDomainAbiTest extends VfioCompatMockDomainTest {
    VfioCompatMockDomainAbiTest(Version version) {
        super(version);
    }

    @Override
    boolean throughAbi() {
        return true;
    }
}
