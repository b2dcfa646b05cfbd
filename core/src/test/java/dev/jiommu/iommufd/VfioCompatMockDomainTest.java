package dev.jiommu.iommufd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.SplittableRandom;

import static dev.jiommu.errno.Errno.EINVAL;
import static dev.jiommu.errno.Errno.ENOENT;
import static dev.jiommu.iommufd.VfioContainer.DMA_MAP_READ;
import static dev.jiommu.iommufd.VfioContainer.DMA_MAP_WRITE;
import static dev.jiommu.iommufd.VfioContainer.DMA_UNMAP_FLAG_ALL;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Port of tools/testing/selftests/iommu/iommufd.c, FIXTURE(vfio_compat_mock_domain): the VFIO
 * type1 container emulation on an IOAS that VFIO would call a group (one mock device attached),
 * selected as the compat IOAS and set to type1 (v1, huge pages off) or type1v2.
 */
@ParameterizedClass
@EnumSource(VfioCompatMockDomainTest.Version.class)
class VfioCompatMockDomainTest extends IommufdFixture {
    enum Version {
        VER1V2(VfioContainer.TYPE1V2_IOMMU),
        VER1V0(VfioContainer.TYPE1_IOMMU);

        final int type;

        Version(int type) {
            this.type = type;
        }
    }

    /** Fixed, so a failure replays; the kernel's rand() is unseeded, which is also a fixed sequence. */
    private static final long SHUFFLE_SEED = 0x5eed_0f_5117L;

    private final Version version;
    private final int ioasId;
    private final IommufdSelftest.MockDomain md;
    private final VfioContainer vfio;

    VfioCompatMockDomainTest(Version version) {
        this.version = version;
        ioasId = testIoctlIoasAlloc();
        md = testCmdMockDomain(ioasId);
        fd.vfioIoas(Iommufd.VFIO_IOAS_SET, ioasId);
        vfio = fd.vfio();
        vfio.setIommu(version.type);
    }

    @Test
    void simple_close() {
    }

    @Test
    void option_huge_pages() {
        assertThat(fd.optionGet(Iommufd.OPTION_HUGE_PAGES, ioasId)).isEqualTo(version == Version.VER1V0 ? 0L : 1L);
    }

    /*
     * The kernel case sweeps every argsz from the header to the full size and checks that the
     * capability chain is well formed and nothing is written past argsz. That packing belongs to the
     * ABI layer (a later issue); here we check what the typed container reports: the page sizes (the
     * domains' sizes with those below the CPU page folded into it), the one usable IOVA range of the
     * mock aperture, and the DMA_AVAIL count iommufd always reports (U32_MAX).
     */
    @Test
    void get_info() {
        VfioContainer.Info info = vfio.info();
        long domainSizes = ctx().objects.get(md.hwptId(), ObjectType.HWPT_PAGING, HwptPaging.class).domain.pageSizes();
        long folded = (domainSizes & -PAGE_SIZE) | PAGE_SIZE;
        assertThat(info.iovaPageSizes()).as("iova_pgsizes 0x%x", info.iovaPageSizes()).isEqualTo(folded);
        assertThat(info.iovaPageSizes() & (PAGE_SIZE - 1)).isZero();
        assertThat(info.iovaRanges()).containsExactly(new IovaRange(MOCK_APERTURE_START, MOCK_APERTURE_LAST));
        assertThat(Integer.toUnsignedLong(info.dmaAvailable())).isEqualTo(0xFFFF_FFFFL);
    }

    @Test
    void map() {
        // Simple map/unmap
        vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buffer, MOCK_APERTURE_START, BUFFER_SIZE);
        checkMockIova(md.hwptId(), buffer, MOCK_APERTURE_START, BUFFER_SIZE);
        assertThat(vfio.unmapDma(0, MOCK_APERTURE_START, BUFFER_SIZE)).isEqualTo(BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 0);

        // UNMAP_FLAG_ALL requires 0 iova/size
        vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buffer, MOCK_APERTURE_START, BUFFER_SIZE);
        assertErrno(EINVAL, () -> vfio.unmapDma(DMA_UNMAP_FLAG_ALL, MOCK_APERTURE_START, BUFFER_SIZE));
        assertThat(vfio.unmapDma(DMA_UNMAP_FLAG_ALL, 0, 0)).isEqualTo(BUFFER_SIZE);
        checkRefs(buffer, BUFFER_SIZE, 0);

        // Small pages, unmapped one by one in a shuffled order
        long[] pagesIova = new long[(int) (BUFFER_SIZE / PAGE_SIZE)];
        for (int i = 0; i < pagesIova.length; i++) {
            pagesIova[i] = MOCK_APERTURE_START + i * PAGE_SIZE;
            vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buffer + i * PAGE_SIZE, pagesIova[i], PAGE_SIZE);
        }
        checkMockIova(md.hwptId(), buffer, MOCK_APERTURE_START, BUFFER_SIZE);
        shuffle(pagesIova, new SplittableRandom(SHUFFLE_SEED));
        for (long iova : pagesIova) {
            assertThat(vfio.unmapDma(0, iova, PAGE_SIZE)).as("unmap 0x%x", iova).isEqualTo(PAGE_SIZE);
            checkRefs(buffer + (iova - MOCK_APERTURE_START), PAGE_SIZE, 0);
        }
        checkRefs(buffer, BUFFER_SIZE, 0);
    }

    /** Failures of the unmap itself report the bytes already unmapped (the kernel writes them back). */
    @Test
    void unmapDmaFailuresReportTheBytesAlreadyUnmapped() {
        IommufdException zero = catchErrno(EINVAL, () -> vfio.unmapDma(0, MOCK_APERTURE_START, 0));
        assertThat(zero.progressBytes()).isZero();
        assertThat(catchErrno(EINVAL, () -> vfio.unmapDma(1 << 2, MOCK_APERTURE_START, PAGE_SIZE)).progressBytes())
                .as("refused before unmapping").isEqualTo(-1);
        vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buffer, MOCK_APERTURE_START, PAGE_SIZE);
        vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buffer + PAGE_SIZE, MOCK_APERTURE_START + PAGE_SIZE, 2 * PAGE_SIZE);
        if (version == Version.VER1V2) {
            IommufdException partial = catchErrno(ENOENT, () -> vfio.unmapDma(0, MOCK_APERTURE_START, 2 * PAGE_SIZE));
            assertThat(partial.progressBytes()).as("the first mapping went before the second stuck out").isEqualTo(PAGE_SIZE);
        }
        vfio.unmapDma(DMA_UNMAP_FLAG_ALL, 0, 0);
        checkRefs(buffer, BUFFER_SIZE, 0);
    }

    /*
     * Two huge pages mapped as one mapping, then unmapped in 16 shuffled pieces: type1 cuts the
     * mapping (huge IOPTEs are off in that mode, so cutting is safe) and the pieces left keep
     * translating; type1v2 never cuts, so every piece is ENOENT and the mapping stays whole.
     */
    @Test
    void huge_map() {
        long bufSize = 2 * HUGEPAGE_SIZE;
        long buf = mmap(bufSize, HUGEPAGE_SIZE);
        vfio.mapDma(DMA_MAP_READ | DMA_MAP_WRITE, buf, MOCK_APERTURE_START, bufSize);
        checkMockIova(md.hwptId(), buf, MOCK_APERTURE_START, bufSize);

        long piece = bufSize / 16;
        long[] pagesIova = new long[16];
        for (int i = 0; i < pagesIova.length; i++) {
            pagesIova[i] = MOCK_APERTURE_START + i * piece;
        }
        shuffle(pagesIova, new SplittableRandom(SHUFFLE_SEED));
        boolean[] gone = new boolean[16];
        for (long iova : pagesIova) {
            if (version == Version.VER1V0) {
                assertThat(vfio.unmapDma(0, iova, piece)).as("unmap 0x%x", iova).isEqualTo(piece);
                gone[(int) ((iova - MOCK_APERTURE_START) / piece)] = true;
            } else {
                assertErrno(ENOENT, () -> vfio.unmapDma(0, iova, piece));
            }
            for (int i = 0; i < 16; i++) {
                if (gone[i]) {
                    checkRefs(buf + i * piece, piece, 0);
                    assertThat(mockDevice(md.stdevId()).canRead(MOCK_APERTURE_START + i * piece)).isFalse();
                } else {
                    checkMockIova(md.hwptId(), buf + i * piece, MOCK_APERTURE_START + i * piece, piece);
                    checkRefs(buf + i * piece, piece, 1);
                }
            }
        }
    }

    /** Fisher–Yates, from a seeded generator. */
    private static void shuffle(long[] array, SplittableRandom random) {
        for (int i = array.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            long tmp = array[i];
            array[i] = array[j];
            array[j] = tmp;
        }
    }
}
