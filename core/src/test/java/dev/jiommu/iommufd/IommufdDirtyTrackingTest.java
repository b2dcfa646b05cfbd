package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.pt.DirtyBitmap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_dirty_tracking): dirty tracking
 * on mock HWPTs over buffers from half a byte of bitmap (8 KiB) to 8 KiB of bitmap (128 MiB), with
 * 2 KiB IOPTEs or, in the huge variants, huge-page backed buffers in 1 MiB IOPTEs.
 *
 * <p>Where this differs from the kernel file, and why:
 * <ul>
 *   <li>{@code get_dirty_bitmap} and {@code get_dirty_bitmap_no_clear}: the typed API returns a
 *       {@link DirtyBitmap} instead of ORing into a user buffer, so the bitmap offsets of the kernel
 *       case (page aligned, {@code +MOCK_PAGE_SIZE}, {@code +0xff1}) are offsets of the bitmap the
 *       DIRTY op reads from user memory; the ORing at any byte address belongs to the ABI layer.</li>
 *   <li>In the non-huge variants the IOAS has huge pages off, so every CPU page reaches the DEFAULT
 *       mock table as one piece, which the table stores as one 4 KiB IOPTE (it has every page size
 *       from 2 KiB up, iommufd-uapi.md §4.7, §8.3). A dirty IOPTE marks every bit it spans (§4.10),
 *       so the IOPTE size the bit pattern is checked against is the CPU page, where the kernel file
 *       passes {@code MOCK_PAGE_SIZE}; the bitmap granularity stays {@code MOCK_PAGE_SIZE}.</li>
 *   <li>{@code set_dirty_tracking} and {@code pasid_set_dirty_tracking} also check, through the
 *       mock's DIRTY op, that tracking is really on and then off again; the kernel cases only
 *       check that the ioctls succeed.</li>
 *   <li>{@code pasid_set_dirty_tracking} refuses the dirty-tracking HWPT to the PASID of a device
 *       without dirty tracking twice: as the kernel case does, with the device's RID on its IOAS
 *       (whose automatic domain, not PASID-compatible, is reason enough, §3.8), and again with the RID
 *       on a PASID-compatible HWPT, where only the missing dirty tracking refuses it.</li>
 * </ul>
 */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdDirtyTrackingTest.Variant.class)
class IommufdDirtyTrackingTest extends IommufdFixture {

    /** FIXTURE_VARIANT(iommufd_dirty_tracking): the buffer size and whether it is huge-page backed. */
    enum Variant {
        /** Half a byte of bitmap. */
        DOMAIN_DIRTY8K(8L << 10, false),
        /** One byte of bitmap. */
        DOMAIN_DIRTY16K(16L << 10, false),
        /** One u32 of bitmap. */
        DOMAIN_DIRTY64K(64L << 10, false),
        /** One u64 of bitmap. */
        DOMAIN_DIRTY128K(128L << 10, false),
        /** Two u64s and a trailing part of a third. */
        DOMAIN_DIRTY320K(320L << 10, false),
        /** 4 KiB of bitmap. */
        DOMAIN_DIRTY64M(64L << 20, false),
        DOMAIN_DIRTY64M_HUGE(64L << 20, true),
        /** 8 KiB of bitmap. */
        DOMAIN_DIRTY128M(128L << 20, false),
        DOMAIN_DIRTY128M_HUGE(128L << 20, true);

        final long bufferSize;
        final boolean hugepages;

        Variant(long bufferSize, boolean hugepages) {
            this.bufferSize = bufferSize;
            this.hugepages = hugepages;
        }
    }

    /** The variant's buffer: its own region, larger than the fixture's scratch in the big variants. */
    private static final long DIRTY_BUFFER_VA = 0x7f40_0000_0000L;
    /** The bitmap the DIRTY op reads, in the fixture's scratch region (page aligned, with a page to spare). */
    private static final long BITMAP_VA = SCRATCH_VA;

    private final Variant variant;
    private long dirtyBuffer;
    /** Bits per bitmap at MOCK_PAGE_SIZE granularity. */
    private long bitmapSize;
    private int ioasId;
    private int stdevId;
    private int idevId;

    IommufdDirtyTrackingTest(Variant variant) {
        this.variant = variant;
    }

    @BeforeEach
    void setUpDirtyTracking() {
        // The huge variants are backed by 2 MiB pages: physically contiguous and aligned, so the HUGE mock
        // table can hold the buffer in 1 MiB IOPTEs. A huge-page mapping is at least one huge page long.
        long length = variant.hugepages ? Math.max(variant.bufferSize, HUGEPAGE_SIZE) : variant.bufferSize;
        mmapFixed(DIRTY_BUFFER_VA, length, variant.hugepages ? HUGEPAGE_SIZE : PAGE_SIZE);
        dirtyBuffer = DIRTY_BUFFER_VA;
        bitmapSize = variant.bufferSize / MOCK_PAGE_SIZE;
        assertThat(bitmapSize / Byte.SIZE + PAGE_SIZE).as("the bitmap fits the scratch region").isLessThanOrEqualTo(SCRATCH_SIZE);

        ioasId = testIoctlIoasAlloc();
        if (!variant.hugepages) {
            // One IOPTE per CPU page, so the IOPTEs the DIRTY op marks are the size the bit checks expect.
            testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 0);
        }
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioasId);
        stdevId = md.stdevId();
        idevId = md.idevId();
    }

    @Test
    void enforce_dirty() {
        // A dirty-tracking HWPT takes a capable device and refuses one without dirty tracking.
        int hwpt = testCmdHwptAlloc(idevId, ioasId, Iommufd.HWPT_ALLOC_DIRTY_TRACKING);
        int stddev = testCmdMockDomain(hwpt).stdevId();
        testErrMockDomainFlags(Errno.EINVAL, hwpt, SelftestDevices.NO_DIRTY);
        testIoctlDestroy(stddev);
        testIoctlDestroy(hwpt);

        // A device whose IOMMU cannot track dirty pages cannot have a dirty-tracking HWPT made for it.
        int otherIoas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain noDirty = testCmdMockDomainFlags(otherIoas, SelftestDevices.NO_DIRTY);
        testErrHwptAlloc(Errno.EOPNOTSUPP, noDirty.idevId(), otherIoas, Iommufd.HWPT_ALLOC_DIRTY_TRACKING);
        testIoctlDestroy(noDirty.stdevId());
    }

    @Test
    void set_dirty_tracking() {
        int hwpt = testCmdHwptAlloc(idevId, ioasId, Iommufd.HWPT_ALLOC_DIRTY_TRACKING);
        int stddev = testCmdMockDomain(hwpt).stdevId();

        testCmdSetDirtyTracking(hwpt, true);
        // Seen from the mock: its DIRTY op works only while tracking is on.
        writeUser(BITMAP_VA, new byte[] {1});
        assertThat(testCmdMockDomainSetDirty(hwpt, MOCK_PAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, BITMAP_VA)).isEqualTo(1);
        testCmdSetDirtyTracking(hwpt, false);
        assertErrno(Errno.EINVAL, () -> testCmdMockDomainSetDirty(hwpt, MOCK_PAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, BITMAP_VA));

        testIoctlDestroy(stddev);
        testIoctlDestroy(hwpt);
    }

    @Test
    void pasid_set_dirty_tracking() {
        int pasid = 100;
        // A HWPT both PASID-compatible and dirty-tracking, used by a PASID-capable device's RID and PASID.
        int hwpt = testCmdHwptAlloc(idevId, ioasId, Iommufd.HWPT_ALLOC_PASID | Iommufd.HWPT_ALLOC_DIRTY_TRACKING);
        int stddev = testCmdMockDomainFlags(hwpt, SelftestDevices.PASID).stdevId();
        testCmdPasidAttach(stddev, pasid, hwpt);
        testCmdPasidCheckHwpt(stddev, pasid, hwpt);

        testCmdSetDirtyTracking(hwpt, true);
        // Seen from the mock: its DIRTY op works only while tracking is on.
        writeUser(BITMAP_VA, new byte[] {1});
        assertThat(testCmdMockDomainSetDirty(hwpt, MOCK_PAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, BITMAP_VA)).isEqualTo(1);
        testCmdSetDirtyTracking(hwpt, false);
        assertErrno(Errno.EINVAL, () -> testCmdMockDomainSetDirty(hwpt, MOCK_PAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, BITMAP_VA));

        testCmdPasidDetach(stddev, pasid);
        testCmdPasidCheckHwpt(stddev, pasid, 0);
        testIoctlDestroy(stddev);

        // A PASID of a device whose IOMMU cannot track dirty pages is refused the dirty-tracking HWPT.
        int otherIoas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain noDirty = testCmdMockDomainFlags(otherIoas, SelftestDevices.PASID | SelftestDevices.NO_DIRTY);
        testErrPasidAttach(Errno.EINVAL, noDirty.stdevId(), pasid, hwpt);
        testCmdPasidCheckHwpt(noDirty.stdevId(), pasid, 0);
        // Not in the kernel case: there the RID is on the IOAS's automatic domain, which is not
        // PASID-compatible and so refuses the attach by itself (§3.8). With the RID on a PASID-compatible
        // HWPT the PASID takes it: the mock checks dirty tracking on the RID's attach only (as 7.3.4 does).
        int ridHwpt = testCmdHwptAlloc(noDirty.idevId(), otherIoas, Iommufd.HWPT_ALLOC_PASID);
        testCmdMockDomainReplace(noDirty.stdevId(), ridHwpt);
        testCmdPasidAttach(noDirty.stdevId(), pasid, hwpt);
        testCmdPasidCheckHwpt(noDirty.stdevId(), pasid, hwpt);
        testCmdPasidDetach(noDirty.stdevId(), pasid);

        testIoctlDestroy(noDirty.stdevId());
        testIoctlDestroy(ridHwpt);
        testIoctlDestroy(hwpt);
    }

    @Test
    void device_dirty_capability() {
        int hwpt = testCmdHwptAlloc(idevId, ioasId, 0);
        int stddev = testCmdMockDomain(hwpt).stdevId();
        assertThat(testCmdGetHwCapabilities(idevId) & Iommufd.HW_CAP_DIRTY_TRACKING).isEqualTo(Iommufd.HW_CAP_DIRTY_TRACKING);
        testIoctlDestroy(stddev);
        testIoctlDestroy(hwpt);
    }

    @Test
    void get_dirty_bitmap() {
        checkDirtyBitmaps(0);
    }

    @Test
    void get_dirty_bitmap_no_clear() {
        checkDirtyBitmaps(Iommufd.GET_DIRTY_BITMAP_NO_CLEAR);
    }

    /** The body both bitmap cases share: map, a dirty HWPT, then the bit checks at three bitmap offsets. */
    private void checkDirtyBitmaps(int flags) {
        long pteSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : PAGE_SIZE;
        testIoctlIoasMapFixed(ioasId, dirtyBuffer, variant.bufferSize, MOCK_APERTURE_START);
        int hwpt = testCmdHwptAllocIommupt(idevId, ioasId, Iommufd.HWPT_ALLOC_DIRTY_TRACKING,
                variant.hugepages ? MockIommuDriver.PAGETABLE_HUGE : MockIommuDriver.PAGETABLE_DEFAULT);
        testCmdSetDirtyTracking(hwpt, true);

        testMockDirtyBitmaps(hwpt, variant.bufferSize, MOCK_APERTURE_START, MOCK_PAGE_SIZE, pteSize, BITMAP_VA, bitmapSize, flags);
        // A bitmap that is not page aligned, then one that is not even u64 aligned.
        testMockDirtyBitmaps(hwpt, variant.bufferSize, MOCK_APERTURE_START, MOCK_PAGE_SIZE, pteSize,
                BITMAP_VA + MOCK_PAGE_SIZE, bitmapSize, flags);
        testMockDirtyBitmaps(hwpt, variant.bufferSize, MOCK_APERTURE_START, MOCK_PAGE_SIZE, pteSize,
                BITMAP_VA + 0xff1, bitmapSize, flags);

        testIoctlDestroy(hwpt);
    }

    /**
     * test_mock_dirty_bitmaps of iommufd_utils.h, in our words: through the DIRTY op, mark dirty the
     * first bit of every other IOPTE; read the bitmap back and expect exactly those IOPTEs, each with
     * every bit it spans; read it again and expect them still there with NO_CLEAR, gone without.
     *
     * @param pageSize the bitmap granularity
     * @param pteSize  the size of the IOPTEs behind the range
     * @param uptr     where in user memory the DIRTY op's bitmap goes
     */
    private void testMockDirtyBitmaps(int hwpt, long length, long iova, long pageSize, long pteSize, long uptr,
                                      long nbits, int flags) {
        long bitsPerPte = pteSize / pageSize;
        long pteSet = 2 * bitsPerPte;

        byte[] marks = new byte[Math.toIntExact((nbits + Byte.SIZE - 1) / Byte.SIZE)];
        long marked = 0;
        for (long i = 0; i < nbits; i += pteSet) {
            marks[(int) (i / Byte.SIZE)] |= (byte) (1 << (i % Byte.SIZE));
            marked++;
        }
        writeUser(uptr, marks);
        assertThat(testCmdMockDomainSetDirty(hwpt, length, iova, pageSize, uptr)).as("out_nr_dirty").isEqualTo(marked);

        DirtyBitmap first = testCmdGetDirtyBitmap(hwpt, length, iova, pageSize, flags);
        assertPattern(first, nbits, bitsPerPte, pteSet, true, "first read");

        DirtyBitmap second = testCmdGetDirtyBitmap(hwpt, length, iova, pageSize, flags);
        assertPattern(second, nbits, bitsPerPte, pteSet, (flags & Iommufd.GET_DIRTY_BITMAP_NO_CLEAR) != 0,
                "second read, flags=" + flags);
    }

    /** Every IOPTE pair: all bits of the first IOPTE set iff {@code expectDirty}, none of the second. */
    private static void assertPattern(DirtyBitmap bitmap, long nbits, long bitsPerPte, long pteSet, boolean expectDirty, String what) {
        long expectedSet = 0;
        for (long i = 0; i < nbits; i += pteSet) {
            for (long j = 0; j < pteSet && i + j < nbits; j++) {
                boolean expected = expectDirty && j < bitsPerPte;
                if (bitmap.isSet(i + j) != expected) {
                    throw new AssertionError(String.format("%s: bit %d (IOPTE pair at bit %d, offset %d) is %s, expected %s",
                            what, i + j, i, j, bitmap.isSet(i + j), expected));
                }
                expectedSet += expected ? 1 : 0;
            }
        }
        assertThat(bitmap.cardinality()).as("%s: bits set", what).isEqualTo(expectedSet);
    }
}
