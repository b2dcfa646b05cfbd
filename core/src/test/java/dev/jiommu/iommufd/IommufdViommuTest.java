package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static dev.jiommu.errno.Errno.EBUSY;
import static dev.jiommu.errno.Errno.EEXIST;
import static dev.jiommu.errno.Errno.EINVAL;
import static dev.jiommu.errno.Errno.EIO;
import static dev.jiommu.errno.Errno.ENOENT;
import static dev.jiommu.errno.Errno.ENXIO;
import static dev.jiommu.errno.Errno.EOPNOTSUPP;
import static dev.jiommu.errno.Errno.EOVERFLOW;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_viommu): an IOAS and, in the
 * mock_viommu variant, a mock device on it, a nest-parent HWPT, a selftest vIOMMU on that parent
 * and a nested HWPT allocated through the vIOMMU (the device stays on the IOAS's auto domain).
 *
 * <p>As in the kernel, the cases that need the vIOMMU skip in the no_viommu variant (JUnit reports
 * them skipped). The kernel's reads of the vEVENTQ and fault fds are {@link IommufdFile#read}, its
 * poll is {@link IommufdFile#poll}, its mmap of the iommufd is {@link Iommufd#mmap} and munmap the
 * mapping's close.
 *
 * <p>{@code vdevice_alloc} follows the newest selftest: the vEVENTQ depth cap of 2^19 and EINVAL for
 * reads too short for the next record are dev-tree behaviour (iommufd-uapi.md §2.20, §5.2), which the
 * core has.
 */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdViommuTest.Variant.class)
class IommufdViommuTest extends IommufdFixture {

    /** FIXTURE_VARIANT(iommufd_viommu). */
    enum Variant {
        NO_VIOMMU(false),
        MOCK_VIOMMU(true);

        final boolean viommu;

        Variant(boolean viommu) {
            this.viommu = viommu;
        }
    }

    /** The largest vEVENTQ depth the core takes (iommufd-uapi.md §2.20, the dev tree's cap). */
    private static final int VEVENTQ_MAX_DEPTH = 1 << 19;
    private static final String NO_VIOMMU_SKIP = "Skipping test for variant no_viommu";

    private final Variant variant;
    private int ioasId;
    private int stdevId;
    private int hwptId;
    private int nestedHwptId;
    private int deviceId;
    private int viommuId;
    /** Every object the setup made, the auto HWPT included. */
    private final List<Integer> setupObjects = new ArrayList<>();

    IommufdViommuTest(Variant variant) {
        this.variant = variant;
    }

    @BeforeEach
    void setUpViommu() {
        ioasId = testIoctlIoasAlloc();
        setupObjects.add(ioasId);
        testIoctlSetDefaultMemoryLimit();
        if (!variant.viommu) {
            return;
        }
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioasId);
        stdevId = md.stdevId();
        deviceId = md.idevId();
        // A nesting parent, then a vIOMMU holding it, then a nested HWPT through the vIOMMU.
        hwptId = testCmdHwptAlloc(deviceId, ioasId, Iommufd.HWPT_ALLOC_NEST_PARENT);
        viommuId = testCmdViommuAlloc(deviceId, hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, null).viommuId();
        nestedHwptId = testCmdHwptAllocNested(deviceId, viommuId, 0, IOMMU_HWPT_DATA_SELFTEST,
                SelftestStructs.hwptSelftest(IOMMU_TEST_IOTLB_DEFAULT));
        setupObjects.addAll(List.of(stdevId, deviceId, md.hwptId(), hwptId, viommuId, nestedHwptId));
    }

    @Test
    void viommu_auto_destroy() {
        // Nothing is destroyed by hand: closing the context must take all of it, which the teardown
        // checks (no object, pin or frame left).
        assertThat(setupObjects).doesNotHaveDuplicates().allSatisfy(id -> assertThat(ctx().objects.find(id)).isNotNull());
        assertThat(ctx().objectCount()).isEqualTo(setupObjects.size());
    }

    @Test
    void viommu_negative_tests() {
        int objects = ctx().objectCount();
        if (variant.viommu) {
            // No such HWPT
            testErrViommuAlloc(ENOENT, deviceId, 0, IOMMU_VIOMMU_TYPE_SELFTEST, null);

            // A HWPT that is not a nesting parent
            int plainHwptId = testCmdHwptAlloc(deviceId, ioasId, 0);
            testErrViommuAlloc(EINVAL, deviceId, plainHwptId, IOMMU_VIOMMU_TYPE_SELFTEST, null);
            testIoctlDestroy(plainHwptId);

            // A type the mock does not know
            testErrViommuAlloc(EOPNOTSUPP, deviceId, hwptId, 0xdead, null);

            // The vIOMMU holds its parent, and the nested HWPT holds the vIOMMU
            testErrIoctlDestroy(EBUSY, hwptId);
            testErrIoctlDestroy(EBUSY, viommuId);
        } else {
            testErrViommuAlloc(ENOENT, deviceId, hwptId, IOMMU_VIOMMU_TYPE_SELFTEST, null);
        }
        assertThat(ctx().objectCount()).as("objects after the failed allocations").isEqualTo(objects);
    }

    @Test
    void viommu_alloc_nested_iopf() {
        assumeTrue(variant.viommu, NO_VIOMMU_SKIP);
        byte[] data = SelftestStructs.hwptSelftest(IOMMU_TEST_IOTLB_DEFAULT);
        int faultValid = Iommufd.HWPT_ALLOC_FAULT_ID_VALID;

        Iommufd.FaultQueueAlloc fault = testIoctlFaultAlloc();
        testErrHwptAllocIopf(ENOENT, deviceId, viommuId, -1 /* UINT32_MAX */, faultValid, IOMMU_HWPT_DATA_SELFTEST, data);
        testErrHwptAllocIopf(EOPNOTSUPP, deviceId, viommuId, fault.faultId(), faultValid | 1 << 31, IOMMU_HWPT_DATA_SELFTEST, data);
        int iopfHwptId = testCmdHwptAllocIopf(deviceId, viommuId, fault.faultId(), faultValid, IOMMU_HWPT_DATA_SELFTEST, data);

        // A vDEVICE must exist before the device attaches to a nested HWPT of the vIOMMU
        testErrMockDomainReplace(ENOENT, stdevId, iopfHwptId);
        testCmdVdeviceAlloc(viommuId, deviceId, 0x99);
        testCmdMockDomainReplace(stdevId, iopfHwptId);
        testErrIoctlDestroy(EBUSY, iopfHwptId);
        testCmdTriggerIopf(deviceId, fault.file());

        testCmdMockDomainReplace(stdevId, ioasId);
        testIoctlDestroy(iopfHwptId);
        fault.file().close();
        testIoctlDestroy(fault.faultId());
    }

    @Test
    void viommu_alloc_with_data() {
        assumeTrue(variant.viommu, NO_VIOMMU_SKIP);
        int inData = 0xbeef;

        Iommufd.ViommuAlloc viommu = testCmdViommuAlloc(deviceId, hwptId, IOMMU_VIOMMU_TYPE_SELFTEST,
                SelftestStructs.viommuSelftest(inData));
        viommuId = viommu.viommuId();
        SelftestStructs.ViommuSelftestOut out = SelftestStructs.ViommuSelftestOut.of(viommu.outData());
        assertThat(out.outData()).isEqualTo(inData);

        // The window maps only at exactly the offset and length reported
        testErrMmap(ENXIO, out.mmapLength(), out.mmapOffset() + PAGE_SIZE);
        testErrMmap(ENXIO, out.mmapLength(), out.mmapOffset() + PAGE_SIZE * 2);
        testErrMmap(ENXIO, out.mmapLength() / 2, out.mmapOffset());
        testErrMmap(ENXIO, out.mmapLength() * 2, out.mmapOffset());

        // A correct mmap reads back what the vIOMMU was given, and keeps its owner busy
        try (Iommufd.MmioMapping window = fd.mmap(out.mmapOffset(), out.mmapLength())) {
            assertThat(window.memory().byteSize()).isEqualTo(out.mmapLength());
            assertThat(window.memory().get(ValueLayout.JAVA_INT_UNALIGNED, 0)).isEqualTo(inData);
            testErrIoctlDestroy(EBUSY, viommuId);
        }
        // Once unmapped, nothing else holds this vIOMMU
        testIoctlDestroy(viommuId);
    }

    @Test
    void vdevice_alloc() {
        if (!variant.viommu) {
            testErrVdeviceAlloc(ENOENT, viommuId, deviceId, 0x99);
            return;
        }
        // A vDEVICE must exist before the device attaches to a nested HWPT of the vIOMMU
        testErrMockDomainReplace(ENOENT, stdevId, nestedHwptId);

        // The depth's lower and upper bounds
        testErrVeventqAlloc(EINVAL, viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 0);
        testErrVeventqAlloc(EINVAL, viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH + 1);
        Iommufd.VeventqAlloc deepest = testCmdVeventqAlloc(viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, VEVENTQ_MAX_DEPTH);
        deepest.file().close();
        testIoctlDestroy(deepest.veventqId());

        // A queue of depth 2, and only one per type
        Iommufd.VeventqAlloc veventq = testCmdVeventqAlloc(viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
        testErrVeventqAlloc(EEXIST, viommuId, IOMMU_VEVENTQ_TYPE_SELFTEST, 2);
        IommufdFile file = veventq.file();
        VeventReader reader = new VeventReader(file);

        // Read counts that can hold no header, on an empty queue
        assertErrno(EINVAL, () -> file.read(new byte[0]));
        assertErrno(EINVAL, () -> file.read(new byte[SelftestStructs.VEVENT_HEADER_BYTES - 1]));

        // virt_id 0x99, then unset it
        int vdevId = testCmdVdeviceAlloc(viommuId, deviceId, 0x99);
        testCmdMockDomainReplace(stdevId, nestedHwptId);
        testCmdTriggerVevents(deviceId, 1);

        // Read counts that cannot hold the pending record, on a non-empty queue
        assertErrno(EINVAL, () -> file.read(new byte[0]));
        assertErrno(EINVAL, () -> file.read(new byte[SelftestStructs.VEVENT_HEADER_BYTES]));

        testCmdReadVevents(reader, 1, 0x99);
        testErrVdeviceAlloc(EEXIST, viommuId, deviceId, 0x99);
        testCmdMockDomainReplace(stdevId, ioasId);
        testIoctlDestroy(vdevId);

        // Again with 0x88, and three events overflowing the depth of 2
        vdevId = testCmdVdeviceAlloc(viommuId, deviceId, 0x88);
        testCmdMockDomainReplace(stdevId, nestedHwptId);
        testCmdTriggerVevents(deviceId, 3);
        testErrReadVevents(EOVERFLOW, reader, 3, 0x88);
        // The overflow is gone once read
        testCmdTriggerVevents(deviceId, 1);
        testCmdReadVevents(reader, 1, 0x88);
        file.close();
        testCmdMockDomainReplace(stdevId, ioasId);
        testIoctlDestroy(vdevId);
        testIoctlDestroy(veventq.veventqId());
    }

    @Test
    void vdevice_cache() {
        assumeTrue(variant.viommu, NO_VIOMMU_SKIP);
        // inv_reqs[2] of struct iommu_viommu_invalidate_selftest {u32 flags; u32 vdev_id; u32 cache_id;}
        SelftestStructs.InvReqs invReqs = new SelftestStructs.InvReqs(2, 3);
        int entryLen = invReqs.entryLen();
        int selftest = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
        int badFlags = 0xffffffff;

        int vdevId = testCmdVdeviceAlloc(viommuId, deviceId, 0x99);
        testCmdDevCheckCacheAll(deviceId, IOMMU_TEST_DEV_CACHE_DEFAULT);

        // An empty array checks only the data_type
        assertThat(testCmdViommuInvalidate(viommuId, invReqs, entryLen, 0)).isZero();

        // Invalid data_type
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, entryLen, 1)).isZero();

        // Entry sizes other than the struct's
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, entryLen + 1, 1)).isZero();
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, 1, 1)).isZero();

        // Unknown flag bits
        invReqs.set(0, badFlags, 0x99);
        assertThat(testErrViommuInvalidate(EOPNOTSUPP, viommuId, invReqs, selftest, entryLen, 1)).isZero();

        // A null data_uptr with entries
        invReqs.set(0, 0, 0x99);
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, null, selftest, entryLen, 1)).isZero();

        // A zero entry_len with entries
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, 0, 1)).isZero();

        // A cache_id past the last slot
        invReqs.set(0, 0, 0x99, MOCK_DEV_CACHE_ID_MAX + 1);
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, entryLen, 1)).isZero();

        // A vdev_id no vDEVICE of this vIOMMU has
        invReqs.set(0, 0, 0x9, 0);
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, entryLen, 1)).isZero();

        // The 1st entry clears slot 0, the 2nd fails on its flags
        invReqs.set(0, 0, 0x99, 0).set(1, badFlags, 0x99, 1);
        assertThat(testErrViommuInvalidate(EOPNOTSUPP, viommuId, invReqs, selftest, entryLen, 2)).isEqualTo(1);
        checkDeviceCaches(0, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT);

        // The 1st entry clears slot 0 again, the 2nd fails on its cache_id
        invReqs.set(0, 0, 0x99, 0).set(1, 0, 0x99, MOCK_DEV_CACHE_ID_MAX + 1);
        assertThat(testErrViommuInvalidate(EINVAL, viommuId, invReqs, selftest, entryLen, 2)).isEqualTo(1);
        checkDeviceCaches(0, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT);

        // Slot 1
        invReqs.set(0, 0, 0x99, 1);
        assertThat(testCmdViommuInvalidate(viommuId, invReqs, entryLen, 1)).isEqualTo(1);
        checkDeviceCaches(0, 0, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT);

        // Slots 2 and 3 in one call
        invReqs.set(0, 0, 0x99, 2).set(1, 0, 0x99, 3);
        assertThat(testCmdViommuInvalidate(viommuId, invReqs, entryLen, 2)).isEqualTo(2);
        testCmdDevCheckCacheAll(deviceId, 0);

        // FLAG_ALL, whatever the cache_id
        invReqs.set(0, IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99);
        assertThat(testCmdViommuInvalidate(viommuId, invReqs, entryLen, 1)).isEqualTo(1);
        testCmdDevCheckCacheAll(deviceId, 0);
        testIoctlDestroy(vdevId);
    }

    @Test
    void hw_queue() {
        assumeTrue(variant.viommu, NO_VIOMMU_SKIP);
        long iova = MOCK_APERTURE_START;
        int type = IOMMU_HW_QUEUE_TYPE_SELFTEST;
        int[] hwQueueIds = new int[2];

        // The reserved default type
        testErrHwQueueAlloc(EOPNOTSUPP, viommuId, IOMMU_HW_QUEUE_TYPE_DEFAULT, 0, iova, PAGE_SIZE);
        // Zero length, and a range that wraps
        testErrHwQueueAlloc(EINVAL, viommuId, type, 0, iova, 0);
        testErrHwQueueAlloc(EOVERFLOW, viommuId, type, 0, ~0L, PAGE_SIZE);
        // Nothing mapped there yet
        testErrHwQueueAlloc(ENOENT, viommuId, type, 0, iova, PAGE_SIZE);

        iova = testIoctlIoasMap(ioasId, buffer, PAGE_SIZE);
        long iova2 = testIoctlIoasMap(ioasId, buffer + PAGE_SIZE, PAGE_SIZE);

        // Indexes start at 0 and stop before the maximum
        testErrHwQueueAlloc(EIO, viommuId, type, 1, iova, PAGE_SIZE);
        testErrHwQueueAlloc(EINVAL, viommuId, type, IOMMU_TEST_HW_QUEUE_MAX, iova, PAGE_SIZE);

        // Queue 0 owns the first page
        hwQueueIds[0] = testCmdHwQueueAlloc(viommuId, type, 0, iova, PAGE_SIZE);
        testErrHwQueueAlloc(EEXIST, viommuId, type, 0, iova, PAGE_SIZE);
        testErrIoctlIoasUnmap(EBUSY, ioasId, iova, PAGE_SIZE);
        // The second page is no queue's, so it unmaps
        testIoctlIoasUnmap(ioasId, iova2, PAGE_SIZE);

        // Queue 1 in the second half of the same page, depending on queue 0
        hwQueueIds[1] = testCmdHwQueueAlloc(viommuId, type, 1, iova + PAGE_SIZE / 2, PAGE_SIZE / 2);
        testErrIoctlDestroy(EBUSY, hwQueueIds[0]);

        // Destroyed in descending order, after which the page unmaps
        testIoctlDestroy(hwQueueIds[1]);
        testIoctlDestroy(hwQueueIds[0]);
        testIoctlIoasUnmap(ioasId, iova, PAGE_SIZE);
    }

    @Test
    void vdevice_tombstone() {
        assumeTrue(variant.viommu, NO_VIOMMU_SKIP);
        int vdevId = testCmdVdeviceAlloc(viommuId, deviceId, 0x99);
        // The device goes first, taking its vDEVICE with it
        testIoctlDestroy(stdevId);
        testErrIoctlDestroy(ENOENT, vdevId);
        // The vDEVICE's ID stays taken: new objects fill the IDs freed below it, then skip it
        int id;
        do {
            id = testIoctlIoasAlloc();
        } while (id < vdevId);
        assertThat(id).as("first new ID at or past the tombstone %d", vdevId).isNotEqualTo(vdevId);
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    private void checkDeviceCaches(int... expected) {
        for (int slot = 0; slot < expected.length; slot++) {
            testCmdDevCheckCache(deviceId, slot, expected[slot]);
        }
    }

    /**
     * Reads {@code count} selftest events from the vEVENTQ (waiting for the first, as the kernel
     * helper polls), like _test_cmd_read_vevents: a lost-events marker or a gap in the sequence
     * numbers is an overflow; each event must report {@code virtId}.
     */
    private void testCmdReadVevents(VeventReader reader, int count, int virtId) {
        assertThat(reader.read(count, virtId)).as("read of %d events", count).isNull();
    }

    private void testErrReadVevents(Errno errno, VeventReader reader, int count, int virtId) {
        assertThat(reader.read(count, virtId)).as("read of %d events", count).isEqualTo(errno);
    }

    /** The reading side of a vEVENTQ file, remembering the last sequence number it saw. */
    private static final class VeventReader {
        private static final int RECORD_BYTES = SelftestStructs.VEVENT_HEADER_BYTES + SelftestStructs.VEVENT_SELFTEST_BYTES;

        private final IommufdFile file;
        private int prevSeq = -1;

        VeventReader(IommufdFile file) {
            this.file = file;
        }

        /** {@return null when {@code count} events of {@code virtId} follow on, else the errno the kernel helper sets} */
        Errno read(int count, int virtId) {
            assertThat(file.poll() & (IommufdFile.POLLIN | IommufdFile.POLLRDNORM)).as("poll: readable")
                    .isEqualTo(IommufdFile.POLLIN | IommufdFile.POLLRDNORM);
            byte[] data = new byte[count * RECORD_BYTES];
            int bytes = file.read(data);
            assertThat(bytes).as("bytes read").isPositive();
            for (int offset = 0, i = 0; i < count; i++, offset += RECORD_BYTES) {
                assertThat(offset + SelftestStructs.VEVENT_HEADER_BYTES).as("record %d was read", i).isLessThanOrEqualTo(bytes);
                int flags = SelftestStructs.u32(data, offset);
                int sequence = SelftestStructs.u32(data, offset + 4);
                boolean gap = sequence - prevSeq > 1;
                prevSeq = sequence;
                if ((flags & SelftestStructs.VEVENTQ_FLAG_LOST_EVENTS) != 0 || gap) {
                    return Errno.EOVERFLOW;
                }
                if (SelftestStructs.u32(data, offset + SelftestStructs.VEVENT_HEADER_BYTES) != virtId) {
                    return Errno.EINVAL;
                }
            }
            return null;
        }
    }
}
