package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_device_pasid): a PASID-capable
 * mock device on an IOAS and, in the {@code no_pasid} variant, a second device without PASIDs; the
 * attach, replace and detach rules of iommufd-uapi.md §3.8, on paging and nested HWPTs, and an I/O
 * page fault on a PASID reported through a FAULT queue (§5.1).
 */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdDevicePasidTest.Variant.class)
class IommufdDevicePasidTest extends IommufdFixture {

    /** FIXTURE_VARIANT(iommufd_device_pasid). */
    enum Variant {
        /** Adds a device without PASID capability beside the PASID-capable one. */
        NO_PASID(false),
        HAS_PASID(true);

        final boolean pasidCapable;

        Variant(boolean pasidCapable) {
            this.pasidCapable = pasidCapable;
        }
    }

    private final Variant variant;
    private int ioasId;
    private int stdevId;
    private int hwptId;
    private int deviceId;
    private int noPasidStdevId;

    IommufdDevicePasidTest(Variant variant) {
        this.variant = variant;
    }

    @BeforeEach
    void setUpDevicePasid() {
        ioasId = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomainFlags(ioasId, SelftestDevices.PASID);
        stdevId = md.stdevId();
        hwptId = md.hwptId();
        deviceId = md.idevId();
        if (!variant.pasidCapable) {
            noPasidStdevId = testCmdMockDomainFlags(ioasId, 0).stdevId();
        }
    }

    @Test
    void pasid_attach() {
        byte[] data = SelftestStructs.hwptSelftest(IOMMU_TEST_IOTLB_DEFAULT);
        int[] nestedHwpt = new int[3];
        int pasid = 100;

        // Detaching a PASID that was never attached is pointless but harmless.
        testCmdPasidDetach(stdevId, pasid);

        // Two PASID-compatible nested HWPTs sharing one NEST_PARENT (which itself is not PASID-compatible).
        int parentHwpt = testCmdHwptAlloc(deviceId, ioasId, Iommufd.HWPT_ALLOC_NEST_PARENT);
        nestedHwpt[0] = testCmdHwptAllocNested(deviceId, parentHwpt, Iommufd.HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data);
        nestedHwpt[1] = testCmdHwptAllocNested(deviceId, parentHwpt, Iommufd.HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data);

        // A FAULT queue and a PASID-compatible nested HWPT reporting its I/O page faults there.
        Iommufd.FaultQueueAlloc fault = testIoctlFaultAlloc();
        int iopfHwpt = testCmdHwptAllocIopf(deviceId, parentHwpt, fault.faultId(),
                Iommufd.HWPT_ALLOC_FAULT_ID_VALID | Iommufd.HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data);

        // A PASID-compatible nested HWPT through a selftest vIOMMU on the same parent (the kernel case
        // only allocates it; nothing is attached to it).
        int viommuId = testCmdViommuAlloc(deviceId, parentHwpt, IOMMU_VIOMMU_TYPE_SELFTEST, null).viommuId();
        nestedHwpt[2] = testCmdHwptAllocNested(deviceId, viommuId, Iommufd.HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data);

        int s2Hwpt = testCmdHwptAlloc(deviceId, ioasId, Iommufd.HWPT_ALLOC_PASID);

        // While the RID is on a HWPT that is not PASID-compatible, no PASID can be attached ...
        testCmdMockDomainReplace(stdevId, parentHwpt);
        testErrPasidAttach(Errno.EINVAL, stdevId, pasid, s2Hwpt);
        // ... with the RID on a PASID-compatible one it can,
        testCmdMockDomainReplace(stdevId, s2Hwpt);
        testCmdPasidAttach(stdevId, pasid, nestedHwpt[0]);
        // and then the RID may not move back to an incompatible HWPT.
        testErrMockDomainReplace(Errno.EINVAL, stdevId, parentHwpt);
        testCmdPasidDetach(stdevId, pasid);
        testCmdPasidCheckHwpt(stdevId, pasid, 0);
        // The RID stays on the PASID-compatible HWPT from here on.

        if (!variant.pasidCapable) {
            // A device without PASIDs may still use a PASID-compatible HWPT for its RID, but no PASID of it
            // attaches, whatever the HWPT.
            testCmdMockDomainReplace(noPasidStdevId, nestedHwpt[0]);
            testCmdMockDomainReplace(noPasidStdevId, ioasId);
            testErrPasidAttach(Errno.EINVAL, noPasidStdevId, pasid, parentHwpt);
            testErrPasidAttach(Errno.EINVAL, noPasidStdevId, pasid, s2Hwpt);
        }

        // A HWPT that is not PASID-compatible is refused for a PASID, and so is an IOAS (its automatic
        // domains never are); the PASID stays detached.
        testErrPasidAttach(Errno.EINVAL, stdevId, pasid, parentHwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, 0);
        testErrPasidAttach(Errno.EINVAL, stdevId, pasid, ioasId);
        testCmdPasidCheckHwpt(stdevId, pasid, 0);

        // An attached PASID is not attached again, to another HWPT or the same: that is what replace is for.
        testCmdPasidAttach(stdevId, pasid, s2Hwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testErrPasidAttach(Errno.EBUSY, stdevId, pasid, nestedHwpt[0]);
        testCmdPasidDetach(stdevId, pasid);
        testCmdPasidCheckHwpt(stdevId, pasid, 0);
        testCmdPasidAttach(stdevId, pasid, nestedHwpt[0]);
        testCmdPasidCheckHwpt(stdevId, pasid, nestedHwpt[0]);
        testErrPasidAttach(Errno.EBUSY, stdevId, pasid, nestedHwpt[0]);
        testCmdPasidDetach(stdevId, pasid);

        // Replace: only an attached PASID can be replaced; an IOAS is refused and changes nothing; the
        // nested HWPTs take over in turn.
        pasid = 200;
        testErrPasidReplace(Errno.EINVAL, stdevId, pasid, s2Hwpt);
        testCmdPasidAttach(stdevId, pasid, s2Hwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testErrPasidReplace(Errno.EINVAL, stdevId, pasid, ioasId);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testCmdPasidReplace(stdevId, pasid, nestedHwpt[0]);
        testCmdPasidCheckHwpt(stdevId, pasid, nestedHwpt[0]);
        testCmdPasidReplace(stdevId, pasid, nestedHwpt[1]);
        testCmdPasidCheckHwpt(stdevId, pasid, nestedHwpt[1]);
        testCmdPasidDetach(stdevId, pasid);

        // The mock fails the second attach at its reserved PASID: the replace fails with the driver's
        // ENOMEM and the PASID keeps the HWPT it had.
        pasid = MockIommuDriver.PASID_RESERVED;
        testCmdPasidAttach(stdevId, pasid, s2Hwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testErrPasidReplace(Errno.ENOMEM, stdevId, pasid, nestedHwpt[0]);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testCmdPasidDetach(stdevId, pasid);
        testCmdPasidCheckHwpt(stdevId, pasid, 0);

        // A PASID on the fault-reporting HWPT: an I/O page fault on it reaches the FAULT queue with the
        // PASID, is read and answered; then the PASID moves to the paging HWPT.
        pasid = 2048;
        testCmdPasidAttach(stdevId, pasid, iopfHwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, iopfHwpt);
        testCmdTriggerIopfPasid(deviceId, pasid, fault.file());
        testCmdPasidReplace(stdevId, pasid, s2Hwpt);
        testCmdPasidCheckHwpt(stdevId, pasid, s2Hwpt);
        testCmdPasidDetach(stdevId, pasid);

        testIoctlDestroy(iopfHwpt);
        fault.file().close();
        testIoctlDestroy(fault.faultId());

        // The RID leaves the PASID-compatible HWPT for an automatic domain again.
        testCmdMockDomainReplace(stdevId, ioasId);
    }
}
