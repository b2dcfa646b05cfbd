package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.IommufdSelftest;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** HWPT_ALLOC, GET_HW_INFO, dirty tracking and HWPT_INVALIDATE through bytes, with their user buffers. */
class AbiHwptCommandsTest extends AbiFixture {
    private static final int INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
    private static final int IOTLB = 0x1234;

    private final int ioas = ctx.ioasAlloc();
    private final IommufdSelftest.MockDomain md = selftest.mockDomain(ioas);

    private static ByteBuffer hwptAlloc(int flags, int devId, int ptId, int dataType, int dataLen, long dataUptr) {
        return struct(48).putInt(48).putInt(flags).putInt(devId).putInt(ptId).putInt(0).putInt(0).putInt(dataType).putInt(dataLen)
                .putLong(dataUptr).putInt(0).putInt(0);
    }

    private static ByteBuffer hwInfo(int flags, int devId, int dataLen, long dataUptr, int inType) {
        return struct(40).putInt(40).putInt(flags).putInt(devId).putInt(dataLen).putLong(dataUptr).putInt(inType).putInt(0).putLong(0);
    }

    private static ByteBuffer invalidate(int hwptId, long uptr, int type, int entryLen, int entryNum) {
        return struct(32).putInt(32).putInt(hwptId).putLong(uptr).putInt(type).putInt(entryLen).putInt(entryNum).putInt(0);
    }

    private int allocThroughBytes(ByteBuffer cmd) {
        assertThat(call(IoctlNumbers.HWPT_ALLOC, cmd)).isZero();
        return result(48).getInt(16);
    }

    private int nested() {
        int parent = allocThroughBytes(hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, 0, 0, 0));
        write(BUFFER, struct(8).putInt(IOTLB).putInt(0));
        return allocThroughBytes(hwptAlloc(0, md.idevId(), parent, MockIommuDriver.HWPT_DATA_SELFTEST, 8, BUFFER));
    }

    @Test
    void hwptAllocReadsThePayloadAndWritesTheId() {
        int hwpt = nested();
        for (int slot = 0; slot < 4; slot++) {
            selftest.mdCheckIotlb(hwpt, slot, IOTLB);
        }
        write(BUFFER, struct(4).putInt(7));
        int short4 = allocThroughBytes(hwptAlloc(0, md.idevId(), hwpt - 1, MockIommuDriver.HWPT_DATA_SELFTEST, 4, BUFFER));
        selftest.mdCheckIotlb(short4, 3, 7);
    }

    @Test
    void hwptAllocChecksReservedAndPayloadSizeBeforeReading() {
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, 0, 0, 0).putInt(20, 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, 0, 8, UNMAPPED))).as("NONE with data: EINVAL, not EFAULT")
                .isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, MockIommuDriver.HWPT_DATA_SELFTEST, 0, 0)))
                .isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, MockIommuDriver.HWPT_DATA_SELFTEST, 8, UNMAPPED)))
                .isEqualTo(err(Errno.EFAULT));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, MockIommuDriver.HWPT_DATA_SELFTEST, 1 << 20, UNMAPPED)))
                .as("longer than any driver struct").isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, MockIommuDriver.HWPT_DATA_SELFTEST, 12, BUFFER)))
                .as("the mock's size rule").isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas + 100, 0, 0, 0))).as("pt_id unknown").isEqualTo(err(Errno.EINVAL));
    }

    @Test
    void hwptAllocWhoseIdCannotBeWrittenLeavesNothing() {
        int before = ctx.objectCount();
        assertThat(callReadOnly(IoctlNumbers.HWPT_ALLOC, hwptAlloc(0, md.idevId(), ioas, 0, 0, 0))).isEqualTo(err(Errno.EFAULT));
        assertThat(ctx.objectCount()).isEqualTo(before);
    }

    @Test
    void getHwInfoCopiesWhatFitsZeroesTheRestAndReportsTheFullLength() {
        fill(BUFFER, 32, 0xaa);
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 4, BUFFER, 0))).isZero();
        ByteBuffer out = result(40);
        assertThat(out.getInt(12)).as("data_len: what the driver has").isEqualTo(8);
        assertThat(out.getInt(24)).isEqualTo(MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        assertThat(out.getLong(32) & Iommufd.HW_CAP_DIRTY_TRACKING).isNotZero();
        assertThat(read(BUFFER, 8).getInt(0)).as("flags copied").isZero();
        assertThat(read(BUFFER, 8).getInt(4)).as("test_reg beyond data_len untouched").isEqualTo(0xaaaaaaaa);

        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 16, BUFFER, 0))).isZero();
        ByteBuffer data = read(BUFFER, 32);
        assertThat(data.getInt(4)).isEqualTo(MockIommuDriver.HW_INFO_SELFTEST_REGVAL);
        assertThat(data.getLong(8)).as("zeroed up to data_len").isZero();
        assertThat(data.getLong(16)).as("past data_len untouched").isEqualTo(0xaaaaaaaaaaaaaaaaL);

        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 0, 0, 0))).as("data_len 0 asks for the length").isZero();
        assertThat(result(40).getInt(12)).isEqualTo(8);
        assertThat(result(40).get(28)).as("no PASID").isZero();
    }

    @Test
    void getHwInfoRules() {
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 8, BUFFER, 0).put(30, (byte) 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(2, md.idevId(), 8, BUFFER, 0))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 8, UNMAPPED, 0))).isEqualTo(err(Errno.EFAULT));
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, md.idevId(), 1 << 20, BUFFER, 0))).as("zeroing runs off the buffer")
                .isEqualTo(err(Errno.EFAULT));
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(Iommufd.HW_INFO_FLAG_INPUT_TYPE, md.idevId(), 8, BUFFER, 7))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, 999, 8, BUFFER, 0))).isEqualTo(err(Errno.ENOENT));
        IommufdSelftest.MockDomain pasid = selftest.mockDomainFlags(ioas, SelftestDevices.PASID);
        assertThat(call(IoctlNumbers.GET_HW_INFO, hwInfo(0, pasid.idevId(), 8, BUFFER, 0))).isZero();
        assertThat(result(40).get(28)).isEqualTo((byte) MockIommuDriver.PASID_BITS);
    }

    @Test
    void dirtyBitsAreOredIntoTheUserBitmapAtAnyByteAddress() {
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, md.idevId(), ioas, 0, null, 0);
        ctx.optionSet(Iommufd.OPTION_HUGE_PAGES, ioas, 0);
        long iova = ctx.ioasMap(ioas, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, MAP_VA, 16 * PAGE, APERTURE_START);
        ByteBuffer enable = struct(16).putInt(16).putInt(Iommufd.DIRTY_TRACKING_ENABLE).putInt(hwpt).putInt(0);
        assertThat(call(IoctlNumbers.HWPT_SET_DIRTY_TRACKING, enable)).isZero();
        write(BUFFER, struct(2).put((byte) 0b0000_0101).put((byte) 0b1000_0000));
        selftest.dirty(hwpt, 0, iova, 16 * PAGE, PAGE, BUFFER);

        long bitmap = BUFFER + 0x103; // no alignment at all
        write(bitmap, struct(4).put((byte) 0b0001_0000).put((byte) 0).put((byte) 0).put((byte) 0x55));
        ByteBuffer get = struct(48).putInt(48).putInt(hwpt).putInt(0).putInt(0).putLong(iova).putLong(16 * PAGE).putLong(PAGE).putLong(bitmap);
        assertThat(call(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, get)).isZero();
        ByteBuffer bits = read(bitmap, 4);
        assertThat(bits.get(0)).as("pages 0 and 2, ORed with the caller's bit 4").isEqualTo((byte) 0b0001_0101);
        assertThat(bits.get(1)).as("page 15").isEqualTo((byte) 0b1000_0000);
        assertThat(bits.get(3)).as("past the bitmap: untouched").isEqualTo((byte) 0x55);
        write(bitmap, struct(2));
        assertThat(call(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, get)).isZero();
        assertThat(read(bitmap, 2).getShort(0)).as("cleared by the first read").isZero();

        assertThat(call(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, get.putInt(12, 1))).isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(call(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, get.putInt(12, 0).putLong(32, 0))).isEqualTo(err(Errno.EINVAL));
    }

    /** 7.3.4 drops the result of pinning the user bitmap: bits for a page it cannot write are lost, the call succeeds. */
    @Test
    void dirtyBitsForABitmapThatCannotBeWrittenAreDropped() {
        int hwpt = ctx.hwptAlloc(Iommufd.HWPT_ALLOC_DIRTY_TRACKING, md.idevId(), ioas, 0, null, 0);
        long iova = ctx.ioasMap(ioas, Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE, MAP_VA, 16 * PAGE, 0);
        ctx.hwptSetDirtyTracking(hwpt, Iommufd.DIRTY_TRACKING_ENABLE);
        write(BUFFER, struct(2).putShort((short) -1));
        selftest.dirty(hwpt, 0, iova, 16 * PAGE, PAGE, BUFFER);
        ByteBuffer get = struct(48).putInt(48).putInt(hwpt).putInt(0).putInt(0).putLong(iova).putLong(16 * PAGE).putLong(PAGE).putLong(UNMAPPED);
        assertThat(call(IoctlNumbers.HWPT_GET_DIRTY_BITMAP, get)).isZero();
        assertThat(ctx.hwptGetDirtyBitmap(hwpt, 0, iova, 16 * PAGE, PAGE).cardinality()).as("read and cleared all the same").isZero();
    }

    @Test
    void invalidateWritesTheEntriesHandledWhateverHappens() {
        int hwpt = nested();
        write(BUFFER, struct(24).putInt(0).putInt(1).putInt(0).putInt(7).putInt(0).putInt(2));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 3))).isEqualTo(err(Errno.EINVAL));
        assertThat(result(32).getInt(24)).as("entry 1 (iotlb_id 7) failed after one").isEqualTo(1);
        selftest.mdCheckIotlb(hwpt, 1, 0);
        selftest.mdCheckIotlb(hwpt, 2, IOTLB);

        write(BUFFER, struct(16).putInt(0).putInt(2).putInt(0).putInt(3));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 2))).isZero();
        assertThat(result(32).getInt(24)).isEqualTo(2);
        selftest.mdCheckIotlb(hwpt, 3, 0);

        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 2).putInt(28, 1)))
                .isEqualTo(err(Errno.EOPNOTSUPP));
        assertThat(result(32).getInt(24)).as("entry_num written as 0").isZero();
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, 0, INVALIDATE_DATA_SELFTEST, 8, 2))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 0, 2))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 4097, 2))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 8, (1 << 19) + 1)))
                .isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, 0, 0x1234, 8, 0))).as("0 entries checks the type")
                .isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, 0, INVALIDATE_DATA_SELFTEST, 8, 0))).isZero();
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(ioas, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 1))).as("an IOAS")
                .isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(999, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 1))).isEqualTo(err(Errno.ENOENT));
    }

    @Test
    void invalidateOfAnArrayRunningIntoUnmappedMemoryHandlesTheReadableEntriesThenFaults() {
        int hwpt = nested();
        long lastTwo = BUFFER + BUFFER_BYTES - 16;
        write(lastTwo, struct(16).putInt(0).putInt(0).putInt(0).putInt(1));
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, lastTwo, INVALIDATE_DATA_SELFTEST, 8, 5))).isEqualTo(err(Errno.EFAULT));
        assertThat(result(32).getInt(24)).isEqualTo(2);
        selftest.mdCheckIotlb(hwpt, 0, 0);
        selftest.mdCheckIotlb(hwpt, 1, 0);
        selftest.mdCheckIotlb(hwpt, 2, IOTLB);
        // Many entries, more than one batch: all handled.
        int entries = 10_000;
        fill(BUFFER, 8, 0);
        ByteBuffer same = struct(8 * entries);
        for (int i = 0; i < entries; i++) {
            same.putInt(0).putInt(i % 4);
        }
        caller.register(0x200_0000, 0x2_0000, true);
        write(0x200_0000, same);
        assertThat(call(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, 0x200_0000, INVALIDATE_DATA_SELFTEST, 8, entries))).isZero();
        assertThat(result(32).getInt(24)).isEqualTo(entries);
    }

    @Test
    void invalidateOfAnIdNobodyCanReadIsWrittenBackOrEfault() {
        int hwpt = nested();
        write(BUFFER, struct(8).putInt(0).putInt(0));
        assertThat(callReadOnly(IoctlNumbers.HWPT_INVALIDATE, invalidate(hwpt, BUFFER, INVALIDATE_DATA_SELFTEST, 8, 1)))
                .as("the entry ran; the count cannot be written").isEqualTo(err(Errno.EFAULT));
        selftest.mdCheckIotlb(hwpt, 0, 0);
    }
}
