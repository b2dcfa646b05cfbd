package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommu.DriverHwInfo;
import dev.jiommu.iommu.SelftestDevices;
import dev.jiommu.mem.DmaBuf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(iommufd_ioas): one IOAS, under each
 * variant of the kernel fixture (no domain, one mock domain, two, one with a tiny pinning batch).
 *
 * <p>{@code dmabuf_simple} also checks, in the variants with a domain, what the dev tree adds to it
 * with MD_CHECK_DMABUF (test op 24, not in mainline): here {@link #testCmdCheckDmabuf} asks the
 * HWPT's mock domain directly ({@code iovaToPhys} against {@link DmaBuf#physicalAddress}).
 * {@code dmabuf_revoke} adds domain checks the C case does not make, in the same way: the revoked
 * area leaves the variant's domain, a domain allocated during the revocation never gets it, and the
 * imports made after the restore reach both. The dev tree's {@code dmabuf_multi_page} (for an
 * exporter with several physical ranges) is not ported.
 *
 * <p>Left out because they need a real kernel: {@code fork_gone} and {@code fork_present}
 * (a child process with its own mm maps the buffer); the rules they check that can be expressed
 * with one address space per context are tested below under camelCase names.
 *
 * <p>Parts of ported cases that belong to the byte-level ABI are left to it: in {@code iova_ranges},
 * the caller's array capacity and EMSGSIZE (the typed API returns the whole list, whose size is what
 * the ioctl reports in {@code num_iovas}); in {@code get_hw_info}, the caller's {@code data_len}
 * (a zero-size, exact, larger or smaller buffer: what is copied, what is zero-filled), since the
 * typed API returns the driver's whole struct.
 */
@ParameterizedClass(name = "{0}")
@EnumSource(IommufdIoasTest.Variant.class)
class IommufdIoasTest extends IommufdFixture {

    /** FIXTURE_VARIANT(iommufd_ioas). */
    enum Variant {
        NO_DOMAIN(0, 0, false),
        /** The kernel also binds a PASID-capable device to the IOAS in this variant. */
        MOCK_DOMAIN(1, 0, true),
        TWO_MOCK_DOMAIN(2, 0, false),
        /**
         * In the kernel a 16-byte temporary buffer forces pinning through its multi-batch paths. The core
         * does not pin through such a buffer (SET_TEMP_MEMORY_LIMIT is kept, not used), so here this
         * variant runs the paths of MOCK_DOMAIN without its PASID device.
         */
        MOCK_DOMAIN_LIMIT(1, 16, false);

        final int mockDomains;
        final int memoryLimit;
        final boolean pasidCapable;

        Variant(int mockDomains, int memoryLimit, boolean pasidCapable) {
            this.mockDomains = mockDomains;
            this.memoryLimit = memoryLimit;
            this.pasidCapable = pasidCapable;
        }
    }

    /** Seed of the bytes the access tests write; {@code -Djiommu.seed=} replays a run. */
    private static final long SEED = Long.getLong("jiommu.seed", 0x5eed_10a5L);

    /** Two huge pages of the scratch region: access_domain_destory's hugetlb buffer. */
    private static final long HUGE_BUF_VA = SCRATCH_VA;
    /** check_access_rw's small bounce buffer ({@code uint16_t tmp[32]}) and its multi-page one. */
    private static final long TMP_VA = SCRATCH_VA + (8L << 20);
    private static final int TMP_BYTES = 64;
    private static final long TMP2_VA = SCRATCH_VA + (9L << 20);
    /** Memory that a test registers and takes away again, standing in for an exited process's. */
    private static final long GONE_VA = 0x7f20_0000_0000L;

    private final Variant variant;
    private int ioasId;
    private int stdevId;
    private int hwptId;
    private int deviceId;
    /** The PASID-capable device of the MOCK_DOMAIN variant. */
    private int devicePasidId;
    private long baseIova;

    IommufdIoasTest(Variant variant) {
        this.variant = variant;
    }

    @BeforeEach
    void setUpIoas() {
        ioasId = testIoctlIoasAlloc();
        if (variant.memoryLimit == 0) {
            testIoctlSetDefaultMemoryLimit();
        } else {
            testIoctlSetTempMemoryLimit(variant.memoryLimit);
        }
        for (int i = 0; i < variant.mockDomains; i++) {
            IommufdSelftest.MockDomain md = testCmdMockDomain(ioasId);
            stdevId = md.stdevId();
            hwptId = md.hwptId();
            deviceId = md.idevId();
            baseIova = MOCK_APERTURE_START;
        }
        if (variant.pasidCapable) {
            devicePasidId = testCmdMockDomainFlags(ioasId, SelftestDevices.PASID).idevId();
        }
    }

    @AfterEach
    void restoreMemoryLimit() {
        testIoctlSetDefaultMemoryLimit();
    }

    private boolean hasDomain() {
        return stdevId != 0;
    }

    // ---- destroy ---------------------------------------------------------------------------------------

    @Test
    void ioas_auto_destroy() {
        // The IOAS, a SELFTEST and a DEVICE per mock device, and one auto HWPT they all share: closing
        // the context must take every one of them, which the teardown checks.
        int devices = variant.mockDomains + (variant.pasidCapable ? 1 : 0);
        assertThat(ctx().objectCount()).isEqualTo(1 + 2 * devices + (devices > 0 ? 1 : 0));
    }

    @Test
    void ioas_destroy() {
        if (hasDomain()) {
            // A device's HWPT holds the IOAS.
            testErrIoctlDestroy(Errno.EBUSY, ioasId);
        } else {
            testIoctlDestroy(ioasId);
            testErrIoctlDestroy(Errno.ENOENT, ioasId);
        }
    }

    @Test
    void hwpt_attach() {
        if (hasDomain()) {
            // A second device attached straight to the HWPT, not through the IOAS.
            assertThat(testCmdMockDomain(hwptId).hwptId()).isEqualTo(hwptId);
        } else {
            testErrMockDomain(Errno.ENOENT, hwptId);
        }
    }

    @Test
    void ioas_area_destroy() {
        // An area neither holds the IOAS nor keeps it from going.
        testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, baseIova);
        if (hasDomain()) {
            testErrIoctlDestroy(Errno.EBUSY, ioasId);
        } else {
            testIoctlDestroy(ioasId);
        }
    }

    @Test
    void ioas_area_auto_destroy() {
        for (int i = 0; i < 10; i++) {
            testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
        }
        if (hasDomain()) {
            checkMockIova(hwptId, buffer, baseIova + 9 * PAGE_SIZE, PAGE_SIZE);
        }
        // Ten areas left for the context's close to unmap and unpin.
    }

    @Test
    void get_hw_info() {
        if (hasDomain()) {
            // The default type and the mock's own type both report the mock's struct (the helper checks
            // type, size, flags and test_reg); any other type is refused.
            testCmdGetHwInfo(deviceId, DriverHwInfo.TYPE_DEFAULT);
            testErrGetHwInfo(Errno.EOPNOTSUPP, deviceId, MockIommuDriver.HW_INFO_TYPE_SELFTEST + 1);
            testCmdGetHwInfo(deviceId, MockIommuDriver.HW_INFO_TYPE_SELFTEST);
            assertThat(testCmdGetHwInfoPasid(deviceId)).as("max_pasid_log2 of a device without PASIDs").isZero();
            if (variant.pasidCapable) {
                assertThat(testCmdGetHwInfoPasid(devicePasidId)).isEqualTo(MockIommuDriver.PASID_BITS);
            }
        } else {
            // No device: ID 0 is nothing.
            testErrGetHwInfo(Errno.ENOENT, deviceId, DriverHwInfo.TYPE_DEFAULT);
            testErrGetHwInfo(Errno.ENOENT, deviceId, MockIommuDriver.HW_INFO_TYPE_SELFTEST);
        }
    }

    // ---- map and unmap ----------------------------------------------------------------------------------

    @Test
    void area() {
        for (int i = 0; i < 10; i++) {
            testErrIoctlIoasUnmap(Errno.ENOENT, ioasId, i * PAGE_SIZE, PAGE_SIZE);
        }

        for (int i = 0; i < 10; i++) {
            testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
        }
        for (int i = 0; i < 10; i++) {
            testIoctlIoasUnmap(ioasId, baseIova + i * PAGE_SIZE, PAGE_SIZE);
        }

        // IOAS_UNMAP never splits an area: each half of a two-page area is refused.
        testIoctlIoasMapFixed(ioasId, buffer, 2 * PAGE_SIZE, baseIova + 16 * PAGE_SIZE);
        testErrIoctlIoasUnmap(Errno.ENOENT, ioasId, baseIova + 16 * PAGE_SIZE, PAGE_SIZE);
        testErrIoctlIoasUnmap(Errno.ENOENT, ioasId, baseIova + 17 * PAGE_SIZE, PAGE_SIZE);

        // Every overlap with the area, however it overlaps, is EEXIST.
        testErrIoctlIoasMapFixed(Errno.EEXIST, ioasId, buffer, 2 * PAGE_SIZE, baseIova + 16 * PAGE_SIZE);
        testErrIoctlIoasMapFixed(Errno.EEXIST, ioasId, buffer, PAGE_SIZE, baseIova + 16 * PAGE_SIZE);
        testErrIoctlIoasMapFixed(Errno.EEXIST, ioasId, buffer, PAGE_SIZE, baseIova + 17 * PAGE_SIZE);
        testErrIoctlIoasMapFixed(Errno.EEXIST, ioasId, buffer, 2 * PAGE_SIZE, baseIova + 15 * PAGE_SIZE);
        testErrIoctlIoasMapFixed(Errno.EEXIST, ioasId, buffer, 3 * PAGE_SIZE, baseIova + 15 * PAGE_SIZE);

        assertThat(testIoctlIoasUnmapAll(ioasId)).as("unmap-all removes the one area left").isEqualTo(2 * PAGE_SIZE);
        assertThat(testIoctlIoasUnmapAll(ioasId)).as("unmap-all of an empty IOAS succeeds").isZero();
        checkRefs(buffer, BUFFER_SIZE, 0);
    }

    @Test
    void unmap_fully_contained_areas() {
        // Leave room below the first area even when the base is IOVA 0.
        long base = baseIova + 4 * PAGE_SIZE;
        for (int i = 0; i < 4; i++) {
            testIoctlIoasMapFixed(ioasId, buffer, 8 * PAGE_SIZE, base + i * 16 * PAGE_SIZE);
        }

        // A range cutting into the first or the last area is refused.
        testErrIoctlIoasUnmap(Errno.ENOENT, ioasId, base - 4 * PAGE_SIZE, 8 * PAGE_SIZE);
        testErrIoctlIoasUnmap(Errno.ENOENT, ioasId, base + 3 * 16 * PAGE_SIZE + 4 * PAGE_SIZE, 8 * PAGE_SIZE);

        // One range holding all four, holes included, unmaps exactly the mapped bytes.
        long unmapped = fd.ioasUnmap(ioasId, base - 4 * PAGE_SIZE, 4 * PAGE_SIZE + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE);
        assertThat(unmapped).isEqualTo(32 * PAGE_SIZE);
    }

    // ---- automatic IOVAs, reserved and allowed ranges ---------------------------------------------------

    @Test
    void area_auto_iova() {
        long[] iovas = new long[10];

        for (int i = 0; i < 10; i++) {
            iovas[i] = testIoctlIoasMap(ioasId, buffer, PAGE_SIZE);
        }
        assertDisjoint(iovas, i -> PAGE_SIZE);
        for (int i = 0; i < 10; i++) {
            testIoctlIoasUnmap(ioasId, iovas[i], PAGE_SIZE);
        }

        // The allocator aligns each IOVA to the lowest set bit of its length.
        for (int i = 0; i < 10; i++) {
            long length = PAGE_SIZE * (i + 1);
            // With no domain nothing is pinned, so any user address will do (the kernel uses 2 GiB).
            long va = hasDomain() ? buffer : 1L << 31;
            iovas[i] = testIoctlIoasMap(ioasId, va, length);
            assertThat(iovas[i] % Long.lowestOneBit(length)).as("iova 0x%x, length 0x%x", iovas[i], length).isZero();
        }
        assertDisjoint(iovas, i -> PAGE_SIZE * (i + 1));
        for (int i = 0; i < 10; i++) {
            testIoctlIoasUnmap(ioasId, iovas[i], PAGE_SIZE * (i + 1));
        }

        // It steers around a reserved range.
        long reservedStart = 4 * PAGE_SIZE;
        long reservedLength = 100 * PAGE_SIZE;
        testCmdAddReserved(ioasId, reservedStart, reservedLength);
        for (int i = 0; i < 10; i++) {
            long length = PAGE_SIZE * (i + 1);
            iovas[i] = testIoctlIoasMap(ioasId, buffer, length);
            assertThat(iovas[i] % Long.lowestOneBit(length)).as("iova 0x%x, length 0x%x", iovas[i], length).isZero();
            assertThat(iovas[i] > reservedStart && iovas[i] < reservedStart + reservedLength)
                    .as("iova 0x%x inside the reserved range", iovas[i]).isFalse();
        }
        for (int i = 0; i < 10; i++) {
            testIoctlIoasUnmap(ioasId, iovas[i], PAGE_SIZE * (i + 1));
        }

        // An allowed range may not cover a reserved one.
        testErrIoctlIoasAllowIovas(Errno.EADDRINUSE, ioasId, new IovaRange(PAGE_SIZE, 600 * PAGE_SIZE));

        // With an allowed range, every automatic IOVA falls wholly inside it.
        IovaRange allowed = hasDomain()
                ? new IovaRange(MOCK_APERTURE_START + PAGE_SIZE, MOCK_APERTURE_START + 600 * PAGE_SIZE - 1)
                : new IovaRange(200 * PAGE_SIZE, 600 * PAGE_SIZE - 1);
        testIoctlIoasAllowIovas(ioasId, allowed);
        for (int i = 0; i < 10; i++) {
            long length = PAGE_SIZE * (i + 1);
            iovas[i] = testIoctlIoasMap(ioasId, buffer, length);
            assertThat(iovas[i] % Long.lowestOneBit(length)).as("iova 0x%x, length 0x%x", iovas[i], length).isZero();
            assertThat(iovas[i]).as("first byte inside %s", allowed).isBetween(allowed.start(), allowed.last());
            assertThat(iovas[i] + length - 1).as("last byte inside %s", allowed).isBetween(allowed.start(), allowed.last());
        }
        for (int i = 0; i < 10; i++) {
            testIoctlIoasUnmap(ioasId, iovas[i], PAGE_SIZE * (i + 1));
        }
    }

    /** The allocator found no room: the only hole is a sliver under the top, too small once aligned. */
    @Test
    void reserved_overflow() {
        // Reserves [6, 2^64 - 0x7ffa]: aligning the top hole's start up to 32 KiB wraps past 2^64.
        testCmdAddReserved(ioasId, 6, 0xffff_ffff_ffff_8001L);
        testErrIoctlIoasMap(Errno.ENOSPC, ioasId, buffer, 0x5000);
    }

    @Test
    void area_allowed() {
        IovaRange allowed = new IovaRange(baseIova, baseIova + 600 * PAGE_SIZE);

        // A reserved range may not land in an allowed one...
        testIoctlIoasAllowIovas(ioasId, allowed);
        testErrCmdAddReserved(Errno.EADDRINUSE, ioasId, allowed.start() + PAGE_SIZE, PAGE_SIZE);
        testIoctlIoasAllowIovas(ioasId);

        // ...nor an allowed range on a reserved one.
        testCmdAddReserved(ioasId, allowed.start() + PAGE_SIZE, PAGE_SIZE);
        testErrIoctlIoasAllowIovas(Errno.EADDRINUSE, ioasId, allowed);
    }

    @Test
    void copy_area() {
        int flags = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE;
        testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, baseIova);

        // Within one IOAS...
        testIoctlIoasCopy(flags, ioasId, baseIova + PAGE_SIZE, ioasId, baseIova, PAGE_SIZE);
        if (hasDomain()) {
            checkMockIova(hwptId, buffer, baseIova + PAGE_SIZE, PAGE_SIZE);
        }

        // ...and into another, at IOVA 0, which a fixed map may use.
        int dstIoasId = testIoctlIoasAlloc();
        testIoctlIoasCopy(flags, dstIoasId, 0, ioasId, baseIova, PAGE_SIZE);

        // The copies share the source's pin: the page is pinned once, and only while a domain needs it.
        checkRefs(buffer, PAGE_SIZE, hasDomain() ? 1 : 0);
    }

    @Test
    void iova_ranges() {
        Iommufd.IovaRanges ranges = fd.ioasIovaRanges(ioasId);
        if (!hasDomain()) {
            assertThat(ranges.ranges()).containsExactly(new IovaRange(0, -1L));
            assertThat(ranges.iovaAlignment()).isEqualTo(1);
        } else {
            assertThat(ranges.ranges()).containsExactly(new IovaRange(MOCK_APERTURE_START, MOCK_APERTURE_LAST));
            assertThat(ranges.iovaAlignment()).isEqualTo(MOCK_PAGE_SIZE);
        }

        // A reserved page splits the range in two, unless it lies outside the aperture already.
        testCmdAddReserved(ioasId, PAGE_SIZE, PAGE_SIZE);
        ranges = fd.ioasIovaRanges(ioasId);
        if (!hasDomain()) {
            assertThat(ranges.ranges()).containsExactly(new IovaRange(0, PAGE_SIZE - 1), new IovaRange(2 * PAGE_SIZE, -1L));
        } else {
            assertThat(ranges.ranges()).containsExactly(new IovaRange(MOCK_APERTURE_START, MOCK_APERTURE_LAST));
        }
    }

    // ---- in-kernel accesses -----------------------------------------------------------------------------

    @Test
    void access_domain_destory() {
        long bufSize = 2 * HUGEPAGE_SIZE;
        testIoctlIoasMapFixed(ioasId, HUGE_BUF_VA, bufSize, baseIova);

        int accessId = testCmdCreateAccess(ioasId, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES);
        int itemId = testCmdAccessPages(accessId, 0, baseIova + PAGE_SIZE, PAGE_SIZE, HUGE_BUF_VA + PAGE_SIZE);

        // Taking a domain away while an access pins a page inside a huge mapping must keep that pin.
        if (hasDomain()) {
            testIoctlDestroy(stdevId);
        }
        checkRefs(HUGE_BUF_VA + PAGE_SIZE, PAGE_SIZE, 1);

        testCmdDestroyAccessPages(accessId, itemId);
        testCmdDestroyAccess(accessId);
    }

    @Test
    void access_pin() {
        int accessId = testCmdCreateAccess(ioasId, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES);

        for (int npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
            long length = npages * PAGE_SIZE;

            // One pin, then its release.
            testIoctlIoasMapFixed(ioasId, buffer, BUFFER_SIZE, MOCK_APERTURE_START);
            int itemId = testCmdAccessPages(accessId, 0, MOCK_APERTURE_START, length, buffer);
            testCmdDestroyAccessPages(accessId, itemId);

            // Two pins of the same pages, released in reverse.
            int first = testCmdAccessPages(accessId, 0, MOCK_APERTURE_START, length, buffer);
            int second = testCmdAccessPages(accessId, 0, MOCK_APERTURE_START, length, buffer);
            testCmdDestroyAccessPages(accessId, second);
            testCmdDestroyAccessPages(accessId, first);

            // A domain joining and leaving while the access holds pages.
            itemId = testCmdAccessPages(accessId, 0, MOCK_APERTURE_START, length, buffer);
            IommufdSelftest.MockDomain md = testCmdMockDomain(ioasId);
            checkMockIova(md.hwptId(), buffer, MOCK_APERTURE_START, BUFFER_SIZE);
            testIoctlDestroy(md.stdevId());
            testCmdDestroyAccessPages(accessId, itemId);

            testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
        }
        testCmdDestroyAccess(accessId);
    }

    @Test
    void access_pin_unmap() {
        int accessId = testCmdCreateAccess(ioasId, IommufdSelftest.ACCESS_CREATE_NEEDS_PIN_PAGES);
        testIoctlIoasMapFixed(ioasId, buffer, BUFFER_SIZE, MOCK_APERTURE_START);
        int itemId = testCmdAccessPages(accessId, 0, MOCK_APERTURE_START, BUFFER_SIZE, buffer);

        // The unmap asks the access to let go; the mock drops its item.
        testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
        testErrDestroyAccessPages(Errno.ENOENT, accessId, itemId);
        checkRefs(buffer, BUFFER_SIZE, 0);
    }

    @Test
    void access_rw() {
        int accessId = testCmdCreateAccess(ioasId, 0);
        long iova = testIoctlIoasMap(ioasId, buffer, BUFFER_SIZE);
        checkAccessRw(accessId, iova, 0);
        checkAccessRw(accessId, iova, IommufdSelftest.ACCESS_RW_SLOW_PATH);
        testIoctlIoasUnmap(ioasId, iova, BUFFER_SIZE);
        testCmdDestroyAccess(accessId);
    }

    @Test
    void access_rw_unaligned() {
        int accessId = testCmdCreateAccess(ioasId, 0);
        // IOVA and memory disagree on the offset within a CPU page.
        long iova = baseIova + MOCK_PAGE_SIZE;
        testIoctlIoasMapFixed(ioasId, buffer, BUFFER_SIZE, iova);
        checkAccessRw(accessId, iova, 0);
        testIoctlIoasUnmap(ioasId, iova, BUFFER_SIZE);
        testCmdDestroyAccess(accessId);
    }

    /**
     * The rule of {@code fork_gone}, without a fork: a mapping made while a domain exists is pinned at
     * once, so its pages keep serving new domains and accesses and cannot be taken away; a mapping made
     * with no domain pins nothing, so a domain attached after the memory went away fails with EFAULT.
     */
    @Test
    void domainAttachAfterTheMemoryIsGoneNeedsPagesPinnedAtMap() {
        user().register(GONE_VA, BUFFER_SIZE, PAGE_SIZE, true);
        byte[] content = randomBytes(new SplittableRandom(SEED), (int) BUFFER_SIZE);
        writeUser(GONE_VA, content);
        int accessId = testCmdCreateAccess(ioasId, 0);
        testIoctlIoasMapFixed(ioasId, GONE_VA, BUFFER_SIZE, MOCK_APERTURE_START);

        if (hasDomain()) {
            assertErrno(Errno.EBUSY, () -> user().unregister(GONE_VA));
            // A new domain in another IOAS is filled from the pages pinned already.
            int otherIoasId = testIoctlIoasAlloc();
            testIoctlIoasCopy(Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE, otherIoasId, MOCK_APERTURE_START,
                    ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
            IommufdSelftest.MockDomain md = testCmdMockDomain(otherIoasId);
            checkMockIova(md.hwptId(), GONE_VA, MOCK_APERTURE_START, BUFFER_SIZE);
            testCmdAccessRw(accessId, MOCK_APERTURE_START, BUFFER_SIZE, TMP2_VA, 0);
            assertThat(readUser(TMP2_VA, (int) BUFFER_SIZE)).as("bytes read through the access, seed %d", SEED).isEqualTo(content);
            testIoctlDestroy(md.stdevId());
            testIoctlDestroy(otherIoasId);
            testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
            user().unregister(GONE_VA);
        } else {
            user().unregister(GONE_VA);
            testErrMockDomain(Errno.EFAULT, ioasId);
            // The refused attach left no domain behind: no aperture was reserved.
            assertThat(fd.ioasIovaRanges(ioasId).ranges()).containsExactly(new IovaRange(0, -1L));
        }
        testCmdDestroyAccess(accessId);
    }

    /**
     * What {@code fork_present} needs (a second process mapping into the shared context) has no
     * counterpart with one address space per context; its neighbouring rule does: two contexts over
     * the same memory pin it independently, and one letting go leaves the other's pins, domain and
     * accesses working.
     */
    @Test
    void pagesPinnedByAnotherContextStayUsableWhenItCloses() {
        Iommufd other = openAnother();
        try {
            int otherIoasId = other.ioasAlloc();
            other.selftest().mockDomain(otherIoasId);
            other.ioasMap(otherIoasId, Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE,
                    buffer, BUFFER_SIZE, MOCK_APERTURE_START);
            checkRefs(buffer, BUFFER_SIZE, 1);

            int accessId = testCmdCreateAccess(ioasId, 0);
            testIoctlIoasMapFixed(ioasId, buffer, BUFFER_SIZE, MOCK_APERTURE_START);
            IommufdSelftest.MockDomain md = testCmdMockDomain(ioasId);
            checkRefs(buffer, BUFFER_SIZE, 2);
            checkAccessRw(accessId, MOCK_APERTURE_START, 0);

            other.close();
            checkRefs(buffer, BUFFER_SIZE, 1);
            checkMockIova(md.hwptId(), buffer, MOCK_APERTURE_START, BUFFER_SIZE);
            checkAccessRw(accessId, MOCK_APERTURE_START, 0);

            testIoctlDestroy(md.stdevId());
            testCmdDestroyAccess(accessId);
        } finally {
            other.close();
        }
    }

    // ---- options and alignment --------------------------------------------------------------------------

    @Test
    void ioas_option_huge_pages() {
        assertThat(testIoctlOptionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).as("huge pages on by default").isEqualTo(1);
        testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 0);
        assertThat(testIoctlOptionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).isZero();
        testErrIoctlOptionSet(Errno.EINVAL, Iommufd.OPTION_HUGE_PAGES, ioasId, 2);
        assertThat(testIoctlOptionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).as("unchanged by the refused SET").isZero();
        testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 1);
        assertThat(testIoctlOptionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).isEqualTo(1);
    }

    @Test
    void ioas_iova_alloc() {
        for (long length = 1; length != 2 * PAGE_SIZE; length++) {
            if (variant.mockDomains > 0 && length % MOCK_PAGE_SIZE != 0) {
                testErrIoctlIoasMap(Errno.EINVAL, ioasId, buffer, length);
            } else {
                long iova = testIoctlIoasMap(ioasId, buffer, length);
                testIoctlIoasUnmap(ioasId, iova, length);
            }
        }
    }

    @Test
    void ioas_align_change() {
        if (variant.mockDomains > 0) {
            // The kernel case stops here: with a domain and a mapping, HUGE_PAGES cannot be turned off.
            testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, MOCK_APERTURE_START);
            testErrIoctlOptionSet(Errno.EINVAL, Iommufd.OPTION_HUGE_PAGES, ioasId, 0);
            testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START, PAGE_SIZE);
            return;
        }

        // Turning huge pages off raises the alignment to the CPU page; aligned areas allow it.
        testIoctlIoasMapFixed(ioasId, buffer, PAGE_SIZE, MOCK_APERTURE_START);
        testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 0);
        assertThat(fd.ioasIovaRanges(ioasId).iovaAlignment()).isEqualTo(PAGE_SIZE);

        // Memory starting mid-page is refused at map time...
        testErrIoctlIoasMapFixed(Errno.EINVAL, ioasId, buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
        testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 0);

        // ...and, once mapped with huge pages on, keeps them from being turned off.
        testIoctlOptionSet(Iommufd.OPTION_HUGE_PAGES, ioasId, 1);
        assertThat(fd.ioasIovaRanges(ioasId).iovaAlignment()).isEqualTo(1);
        testIoctlIoasMapFixed(ioasId, buffer + MOCK_PAGE_SIZE, PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE);
        testErrIoctlOptionSet(Errno.EADDRINUSE, Iommufd.OPTION_HUGE_PAGES, ioasId, 0);
        assertThat(testIoctlOptionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).as("unchanged by the refused SET").isEqualTo(1);

        testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE);
        testIoctlIoasUnmap(ioasId, MOCK_APERTURE_START, PAGE_SIZE);
    }

    @Test
    void copy_sweep() {
        int flags = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_WRITEABLE;
        int dstIoasId = testIoctlIoasAlloc();
        // With no domain the source may even end on an odd byte.
        long lastIova = variant.mockDomains > 0 ? MOCK_APERTURE_START + BUFFER_SIZE - 1 : MOCK_APERTURE_START + BUFFER_SIZE - 2;
        testIoctlIoasMapFixed(ioasId, buffer, lastIova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);

        // Every source offset, stepping by an odd 511 bytes, from a page below the area to its end.
        int copied = 0;
        for (long iova = MOCK_APERTURE_START - PAGE_SIZE; iova <= lastIova; iova += 511) {
            if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > lastIova) {
                testErrIoctlIoasCopy(Errno.ENOENT, flags, dstIoasId, MOCK_APERTURE_START, ioasId, iova, MOCK_PAGE_SIZE);
            } else {
                testIoctlIoasCopy(flags, dstIoasId, MOCK_APERTURE_START, ioasId, iova, MOCK_PAGE_SIZE);
                testIoctlIoasUnmap(dstIoasId, MOCK_APERTURE_START, MOCK_PAGE_SIZE);
                copied++;
            }
        }
        assertThat(copied).as("source offsets that fit inside the area").isPositive();

        testIoctlDestroy(dstIoasId);
    }

    // ---- helpers --------------------------------------------------------------------------------------

    /**
     * check_access_rw of iommufd.c: random bytes in the buffer mapped at {@code iova}, then reads and
     * writes of 1 to 63 bytes through the access at every offset within 50 bytes of the first page
     * boundary, each compared with the buffer, then one read of the whole buffer.
     */
    private void checkAccessRw(int accessId, long iova, int defFlags) {
        SplittableRandom random = new SplittableRandom(SEED);
        writeUser(buffer, randomBytes(random, (int) BUFFER_SIZE));

        for (long at = iova + PAGE_SIZE - 50; at < iova + PAGE_SIZE + 50; at++) {
            long va = buffer + (at - iova);
            for (int length = 1; length < TMP_BYTES; length++) {
                testCmdAccessRw(accessId, at, length, TMP_VA, defFlags);
                assertThat(readUser(TMP_VA, length)).as("read iova=0x%x length=%d seed %d", at, length, SEED)
                        .isEqualTo(readUser(va, length));

                byte[] fresh = randomBytes(random, TMP_BYTES);
                writeUser(TMP_VA, fresh);
                testCmdAccessRw(accessId, at, length, TMP_VA, defFlags | IommufdSelftest.ACCESS_RW_WRITE);
                assertThat(readUser(va, length)).as("write iova=0x%x length=%d seed %d", at, length, SEED)
                        .isEqualTo(Arrays.copyOf(fresh, length));
            }
        }

        testCmdAccessRw(accessId, iova, BUFFER_SIZE, TMP2_VA, defFlags);
        assertThat(readUser(TMP2_VA, (int) BUFFER_SIZE)).as("multi-page read, seed %d", SEED)
                .isEqualTo(readUser(buffer, (int) BUFFER_SIZE));
    }

    private static byte[] randomBytes(SplittableRandom random, int length) {
        byte[] bytes = new byte[length];
        random.nextBytes(bytes);
        return bytes;
    }

    /** Asserts that the areas [iovas[i], iovas[i] + length(i)) do not overlap. */
    private static void assertDisjoint(long[] iovas, java.util.function.IntToLongFunction length) {
        for (int i = 0; i < iovas.length; i++) {
            for (int j = 0; j < i; j++) {
                boolean overlap = iovas[i] < iovas[j] + length.applyAsLong(j) && iovas[j] < iovas[i] + length.applyAsLong(i);
                assertThat(overlap).as("automatic iovas 0x%x and 0x%x overlap", iovas[j], iovas[i]).isFalse();
            }
        }
    }

    // ---- nested HWPTs -------------------------------------------------------------------------------------

    /*
     * The kernel's case also allocates a nested HWPT with a null data_uptr and a non-zero data_len
     * (EFAULT); a byte[] payload cannot be a bad pointer, so that check belongs to the ABI layer. Its
     * dev-tree check that entry_num above 2^19 is EINVAL is left out too: iommufd-uapi.md §2.15 marks
     * that cap optional and the core does not have it.
     */
    @Test
    void alloc_hwpt_nested() {
        int deviceId = hasDomain() ? idevIdOf(stdevId) : 0;
        byte[] data = SelftestStructs.hwptSelftest(IOMMU_TEST_IOTLB_DEFAULT);
        int minDataLen = 4; // offsetofend(struct iommu_hwpt_selftest, iotlb)
        int nestParent = Iommufd.HWPT_ALLOC_NEST_PARENT;
        int faultValid = Iommufd.HWPT_ALLOC_FAULT_ID_VALID;
        int selftest = IOMMU_HWPT_DATA_SELFTEST;

        if (!hasDomain()) {
            testErrHwptAlloc(Errno.ENOENT, deviceId, ioasId, 0);
            testErrHwptAllocNested(Errno.ENOENT, deviceId, 0, 0, selftest, data);
            testErrMockDomainReplace(Errno.ENOENT, stdevId, 0);
            return;
        }

        // A dev_id that is no device, a pt_id that is no IOAS or HWPT, a fault-reporting nest parent
        testErrHwptAlloc(Errno.ENOENT, ioasId, deviceId, 0);
        testErrHwptAlloc(Errno.EINVAL, deviceId, deviceId, 0);
        testErrHwptAlloc(Errno.EOPNOTSUPP, deviceId, ioasId, nestParent | faultValid);

        int parentHwptId = testCmdHwptAlloc(deviceId, ioasId, nestParent);
        int parentHwptIdNotWork = testCmdHwptAlloc(deviceId, ioasId, 0);

        // A payload without a type, of an unknown type, too short; NEST_PARENT on a nested HWPT; a
        // parent that is not a nesting parent
        testErrHwptAllocNested(Errno.EINVAL, deviceId, parentHwptId, 0, Iommufd.HWPT_DATA_NONE, data);
        testErrHwptAllocNested(Errno.EOPNOTSUPP, deviceId, parentHwptId, 0, selftest + 1, data);
        testErrHwptAllocNested(Errno.EINVAL, deviceId, parentHwptId, 0, selftest, Arrays.copyOf(data, minDataLen - 1));
        testErrHwptAllocNested(Errno.EOPNOTSUPP, deviceId, parentHwptId, nestParent, selftest, data);
        testErrHwptAllocNested(Errno.EINVAL, deviceId, parentHwptIdNotWork, 0, selftest, data);

        // Two nested HWPTs sharing the parent, and a third reporting faults
        Iommufd.FaultQueueAlloc fault = testIoctlFaultAlloc();
        int[] nestedHwptId = {
                testCmdHwptAllocNested(deviceId, parentHwptId, 0, selftest, data),
                testCmdHwptAllocNested(deviceId, parentHwptId, 0, selftest, data)};
        testErrHwptAllocIopf(Errno.ENOENT, deviceId, parentHwptId, -1 /* UINT32_MAX */, faultValid, selftest, data);
        int iopfHwptId = testCmdHwptAllocIopf(deviceId, parentHwptId, fault.faultId(), faultValid, selftest, data);
        testCmdHwptCheckIotlbAll(nestedHwptId[0], IOMMU_TEST_IOTLB_DEFAULT);
        testCmdHwptCheckIotlbAll(nestedHwptId[1], IOMMU_TEST_IOTLB_DEFAULT);

        // No nested HWPT on a nested HWPT; the parent is held
        testErrHwptAllocNested(Errno.EINVAL, deviceId, nestedHwptId[0], 0, selftest, data);
        testErrIoctlDestroy(Errno.EBUSY, parentHwptId);

        // inv_reqs[2] of struct iommu_hwpt_invalidate_selftest {u32 flags; u32 iotlb_id;}
        SelftestStructs.InvReqs invReqs = new SelftestStructs.InvReqs(2, 2);
        int entryLen = invReqs.entryLen();
        int invSelftest = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
        int badFlags = 0xffffffff;
        int nested0 = nestedHwptId[0];

        // HWPT_INVALIDATE takes no paging (parent) HWPT
        assertThat(testErrHwptInvalidate(Errno.EINVAL, parentHwptId, invReqs, invSelftest, entryLen, 1)).isZero();
        // An empty array checks only the data_type
        assertThat(testCmdHwptInvalidate(nested0, invReqs, invSelftest, entryLen, 0)).isZero();
        // Invalid data_type
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, entryLen, 1))
                .isZero();
        // Entry sizes other than the struct's (one past a page is refused by the mock's size rule here,
        // by a cap in the dev tree)
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, entryLen + 1, 1)).isZero();
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, 1, 1)).isZero();
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, (int) PAGE_SIZE + 1, 1)).isZero();
        // Unknown flag bits
        invReqs.set(0, badFlags);
        assertThat(testErrHwptInvalidate(Errno.EOPNOTSUPP, nested0, invReqs, invSelftest, entryLen, 1)).isZero();
        // A null data_uptr, or a zero entry_len, with entries
        invReqs.set(0, 0);
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, null, invSelftest, entryLen, 1)).isZero();
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, 0, 1)).isZero();
        // An iotlb_id past the last slot
        invReqs.set(0, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, entryLen, 1)).isZero();

        // The 1st entry clears slot 0, the 2nd fails on its flags
        invReqs.set(0, 0, 0).set(1, badFlags, 1);
        assertThat(testErrHwptInvalidate(Errno.EOPNOTSUPP, nested0, invReqs, invSelftest, entryLen, 2)).isEqualTo(1);
        checkIotlbSlots(nested0, 0, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT);

        // The 1st entry clears slot 0 again, the 2nd fails on its iotlb_id
        invReqs.set(0, 0, 0).set(1, 0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1);
        assertThat(testErrHwptInvalidate(Errno.EINVAL, nested0, invReqs, invSelftest, entryLen, 2)).isEqualTo(1);
        checkIotlbSlots(nested0, 0, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT);

        // Slot 1, then slots 2 and 3 in one call
        invReqs.set(0, 0, 1);
        assertThat(testCmdHwptInvalidate(nested0, invReqs, invSelftest, entryLen, 1)).isEqualTo(1);
        checkIotlbSlots(nested0, 0, 0, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT);
        invReqs.set(0, 0, 2).set(1, 0, 3);
        assertThat(testCmdHwptInvalidate(nested0, invReqs, invSelftest, entryLen, 2)).isEqualTo(2);
        testCmdHwptCheckIotlbAll(nested0, 0);

        // FLAG_ALL on the other nested HWPT, which the calls above left alone
        testCmdHwptCheckIotlbAll(nestedHwptId[1], IOMMU_TEST_IOTLB_DEFAULT);
        invReqs.set(0, IOMMU_TEST_INVALIDATE_FLAG_ALL);
        assertThat(testCmdHwptInvalidate(nestedHwptId[1], invReqs, invSelftest, entryLen, 1)).isEqualTo(1);
        testCmdHwptCheckIotlbAll(nestedHwptId[1], 0);

        // A device attached to a nested HWPT keeps it busy, across a switch to the other one
        testCmdMockDomainReplace(stdevId, nestedHwptId[0]);
        testErrIoctlDestroy(Errno.EBUSY, nestedHwptId[0]);
        testCmdMockDomainReplace(stdevId, nestedHwptId[1]);
        testErrIoctlDestroy(Errno.EBUSY, nestedHwptId[1]);
        testIoctlDestroy(nestedHwptId[0]);

        // On the fault-reporting HWPT, a page request reaches the fault queue
        testCmdMockDomainReplace(stdevId, iopfHwptId);
        testErrIoctlDestroy(Errno.EBUSY, iopfHwptId);
        testCmdTriggerIopf(deviceId, fault.file());

        // Back to the parent, then to the IOAS, freeing each HWPT on the way
        testCmdMockDomainReplace(stdevId, parentHwptId);
        testIoctlDestroy(nestedHwptId[1]);
        testIoctlDestroy(iopfHwptId);
        testCmdMockDomainReplace(stdevId, ioasId);
        testIoctlDestroy(parentHwptId);
        testIoctlDestroy(parentHwptIdNotWork);
        fault.file().close();
        testIoctlDestroy(fault.faultId());
    }

    private void checkIotlbSlots(int hwptId, int... expected) {
        for (int slot = 0; slot < expected.length; slot++) {
            testCmdHwptCheckIotlb(hwptId, slot, expected[slot]);
        }
    }

    // ---- dma-buf ---------------------------------------------------------------------------------------

    @Test
    void dmabuf_simple() {
        long bufSize = 4 * PAGE_SIZE;
        DmaBuf dfd = testCmdGetDmabuf(bufSize);
        // Nothing to map, a range starting at the end, a range one byte too long
        testErrIoctlIoasMapFileId(Errno.EINVAL, ioasId, dfd, 0, 0);
        testErrIoctlIoasMapFileId(Errno.EINVAL, ioasId, dfd, bufSize, bufSize);
        testErrIoctlIoasMapFileId(Errno.EINVAL, ioasId, dfd, 0, bufSize + 1);
        long iova = testIoctlIoasMapFileId(ioasId, dfd, 0, bufSize);
        if (hasDomain()) {
            // The dev tree's MD_CHECK_DMABUF, through the variant's domain: the exporter's memory is mapped as is
            testCmdCheckDmabuf(hwptId, dfd, iova, bufSize, 0);
        }
    }

    @Test
    void dmabuf_revoke() {
        long bufSize = 4 * PAGE_SIZE;
        DmaBuf dfd = testCmdGetDmabuf(bufSize);
        long iova = testIoctlIoasMapFileId(ioasId, dfd, 0, bufSize);
        testCmdRevokeDmabuf(dfd, true);
        // Beyond the C case, which only sees errnos: the revoked area has left the domain
        if (hasDomain()) {
            checkMockIovaUnmapped(hwptId, iova, bufSize);
        }

        // A new domain can join the IOAS while one of its areas is revoked; it gets nothing of that area
        int lateHwptId = 0;
        if (hasDomain()) {
            lateHwptId = testCmdHwptAlloc(deviceId, ioasId, 0);
            checkMockIovaUnmapped(lateHwptId, iova, bufSize);
        }

        // No new import while revoked; once restored, a new one works
        testErrIoctlIoasMapFileId(Errno.ENODEV, ioasId, dfd, 0, bufSize);
        testCmdRevokeDmabuf(dfd, false);
        long iova2 = testIoctlIoasMapFileId(ioasId, dfd, 0, bufSize);

        // The revoked area kept its IOVA until unmapped; after that a fixed map takes it back
        testIoctlIoasUnmap(ioasId, iova, bufSize);
        testIoctlIoasMapFixedFileId(ioasId, dfd, 0, bufSize, iova);

        // Beyond the C case: both imports made after the restore reach both domains
        if (hasDomain()) {
            for (int each : new int[] {hwptId, lateHwptId}) {
                testCmdCheckDmabuf(each, dfd, iova, bufSize, 0);
                testCmdCheckDmabuf(each, dfd, iova2, bufSize, 0);
            }
        }
    }
}
