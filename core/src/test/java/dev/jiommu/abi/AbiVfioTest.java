package dev.jiommu.abi;

import dev.jiommu.driver.mock.MockIommuDriver;
import dev.jiommu.errno.Errno;
import dev.jiommu.iommufd.Iommufd;
import dev.jiommu.iommufd.VfioContainer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/** The VFIO container ioctls on the iommufd fd (§7), through the decoder's VFIO path. */
class AbiVfioTest extends AbiFixture {
    private static final int PGSIZES_AND_CAPS = 1 | 2;
    private static final int FULL_INFO_BYTES = 24 + 16 + 16 + 16; // header, DMA_AVAIL (12, aligned), IOVA_RANGE with one range

    private int compatIoas() {
        int ioas = ctx.ioasAlloc();
        ctx.vfioIoas(Iommufd.VFIO_IOAS_SET, ioas);
        selftest.mockDomain(ioas);
        return ioas;
    }

    private static ByteBuffer dmaMap(int argsz, int flags, long vaddr, long iova, long size) {
        return struct(32).putInt(argsz).putInt(flags).putLong(vaddr).putLong(iova).putLong(size);
    }

    private static ByteBuffer dmaUnmap(int flags, long iova, long size) {
        return struct(24).putInt(24).putInt(flags).putLong(iova).putLong(size);
    }

    @Test
    void integerArgumentIoctls() {
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_GET_API_VERSION, 0)).isEqualTo(VfioContainer.VFIO_API_VERSION);
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, VfioContainer.TYPE1V2_IOMMU)).isEqualTo(1);
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, VfioContainer.UNMAP_ALL)).isEqualTo(1);
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, 6)).as("nesting type").isZero();
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, (1L << 32) | VfioContainer.TYPE1_IOMMU)).as("an unsigned long").isZero();
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, VfioContainer.DMA_CC_IOMMU)).isEqualTo(err(Errno.ENODEV));
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_SET_IOMMU, VfioContainer.TYPE1V2_IOMMU)).isEqualTo(err(Errno.ENODEV));
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_SET_IOMMU, 2)).as("the type before the compat IOAS").isEqualTo(err(Errno.EINVAL));
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_SET_IOMMU, (1L << 32) | VfioContainer.TYPE1_IOMMU)).isEqualTo(err(Errno.EINVAL));
        int ioas = compatIoas();
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_CHECK_EXTENSION, VfioContainer.DMA_CC_IOMMU)).isEqualTo(1);
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_SET_IOMMU, VfioContainer.TYPE1_IOMMU)).isZero();
        assertThat(ctx.optionGet(Iommufd.OPTION_HUGE_PAGES, ioas)).as("TYPE1 turns huge pages off").isZero();
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_IOMMU_DIRTY_PAGES, ARG)).isEqualTo(err(Errno.ENOTTY));
    }

    @Test
    void getInfoBeforeCapabilitiesAndWithThem() {
        assertThat(call(IoctlNumbers.VFIO_IOMMU_GET_INFO, struct(16).putInt(16))).isEqualTo(err(Errno.ENODEV));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_GET_INFO, struct(16).putInt(15))).isEqualTo(err(Errno.EINVAL));
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_IOMMU_GET_INFO, UNMAPPED)).isEqualTo(err(Errno.EFAULT));
        compatIoas();
        fill(ARG, 128, 0xaa);
        assertThat(call(IoctlNumbers.VFIO_IOMMU_GET_INFO, struct(4).putInt(16))).as("the pre-capability ABI").isZero();
        ByteBuffer info = result(128);
        assertThat(info.getInt(0)).as("argsz: the whole chain").isEqualTo(FULL_INFO_BYTES);
        assertThat(info.getInt(4)).isEqualTo(PGSIZES_AND_CAPS);
        assertThat(info.getLong(8)).isNotZero();
        assertThat(info.getLong(8) & (PAGE - 1)).as("sizes below the CPU page fold into it").isZero();
        assertThat(info.getInt(16)).as("cap_offset is past argsz: untouched").isEqualTo(0xaaaaaaaa);

        fill(ARG, 128, 0xaa);
        assertThat(call(IoctlNumbers.VFIO_IOMMU_GET_INFO, struct(4).putInt(FULL_INFO_BYTES))).isZero();
        info = result(128);
        assertThat(info.getInt(16)).as("cap_offset").isEqualTo(24);
        assertThat(info.getShort(24)).as("DMA_AVAIL id").isEqualTo((short) 3);
        assertThat(info.getInt(28)).as("its next").isEqualTo(40);
        assertThat(info.getInt(32)).as("avail = U32_MAX").isEqualTo(-1);
        assertThat(info.getShort(40)).as("IOVA_RANGE id").isEqualTo((short) 1);
        assertThat(info.getShort(42)).as("version").isEqualTo((short) 1);
        assertThat(info.getInt(44)).as("the last").isZero();
        assertThat(info.getInt(48)).as("nr_iovas").isEqualTo(1);
        assertThat(info.getLong(56)).isEqualTo(MockIommuDriver.APERTURE_START);
        assertThat(info.getLong(64)).isEqualTo(MockIommuDriver.APERTURE_LAST);
        assertThat(info.get(FULL_INFO_BYTES)).as("nothing past argsz").isEqualTo((byte) 0xaa);
    }

    /** Port of iommufd.c TEST_F(vfio_compat_mock_domain, get_info): every argsz from the header up, no corrupt chain, nothing past argsz. */
    @Test
    void get_info() {
        compatIoas();
        for (int argsz = 16; argsz <= FULL_INFO_BYTES + 8; argsz++) {
            fill(ARG, 256, 0xaa);
            assertThat(call(IoctlNumbers.VFIO_IOMMU_GET_INFO, struct(4).putInt(argsz))).as("argsz %d", argsz).isZero();
            ByteBuffer info = result(256);
            for (int i = argsz; i < 256; i++) {
                assertThat(info.get(i)).as("argsz %d: byte %d written", argsz, i).isEqualTo((byte) 0xaa);
            }
            assertThat(info.getInt(0)).isEqualTo(FULL_INFO_BYTES);
            assertThat(info.getInt(4)).isEqualTo(PGSIZES_AND_CAPS);
            if (argsz >= 24) {
                assertThat(info.getInt(16) != 0).as("argsz %d: cap_offset only when the chain fits", argsz).isEqualTo(argsz >= FULL_INFO_BYTES);
            }
            if (argsz >= 24 && info.getInt(16) != 0) {
                checkCapChain(info, argsz);
            }
        }
    }

    /** The chain from cap_offset: every header inside argsz, next moving forward, each capability as §7 says. */
    private static void checkCapChain(ByteBuffer info, int argsz) {
        int at = info.getInt(16);
        int seen = 0;
        while (true) {
            assertThat(at + 8).isLessThanOrEqualTo(argsz);
            int id = info.getShort(at);
            int next = info.getInt(at + 4);
            int end = next != 0 ? next : argsz;
            assertThat(info.getShort(at + 2)).as("version").isEqualTo((short) 1);
            switch (id) {
                case 1 -> {
                    assertThat(info.getInt(at + 8)).isEqualTo(1);
                    assertThat(end - at).isGreaterThanOrEqualTo(32);
                    assertThat(info.getLong(at + 16)).isEqualTo(MockIommuDriver.APERTURE_START);
                    assertThat(info.getLong(at + 24)).isEqualTo(MockIommuDriver.APERTURE_LAST);
                }
                case 3 -> assertThat(end - at).isGreaterThanOrEqualTo(12);
                default -> throw new AssertionError("capability id " + id);
            }
            seen++;
            if (next == 0) {
                break;
            }
            assertThat(next).isGreaterThan(at);
            at = next;
        }
        assertThat(seen).isEqualTo(2);
    }

    @Test
    void mapAndUnmapDmaWriteBackTheBytesUnmapped() {
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA, APERTURE_START, 4 * PAGE))).isEqualTo(err(Errno.ENODEV));
        int ioas = compatIoas();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(31, 3, MAP_VA, APERTURE_START, 4 * PAGE))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 4, MAP_VA, APERTURE_START, 4 * PAGE))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA, APERTURE_START, 4 * PAGE))).isZero();
        assertThat(caller.pinCount(MAP_VA)).isEqualTo(1);
        assertThat(ctx.accounting().mmLockedPages()).as("VFIO maps charge the mm").isEqualTo(4);
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA + 4 * PAGE, APERTURE_START + 4 * PAGE, 4 * PAGE))).isZero();

        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START, 4 * PAGE))).isZero();
        assertThat(result(24).getLong(16)).isEqualTo(4 * PAGE);
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START, 4 * PAGE))).as("nothing there: success").isZero();
        assertThat(result(24).getLong(16)).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START + 4 * PAGE, 2 * PAGE)))
                .as("TYPE1v2 does not split").isEqualTo(err(Errno.ENOENT));
        assertThat(result(24).getLong(16)).as("size written back even so").isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(2, APERTURE_START, PAGE))).as("ALL needs 0 and 0")
                .isEqualTo(err(Errno.EINVAL));
        assertThat(result(24).getLong(16)).as("refused before the unmap: untouched").isEqualTo(PAGE);
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(1, 0, 0))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, 0, 0).putInt(0, 23))).isEqualTo(err(Errno.EINVAL));
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(2, 0, 0))).isZero();
        assertThat(result(24).getLong(16)).isEqualTo(4 * PAGE);
        assertThat(ctx.ioasIovaRanges(ioas).ranges()).hasSize(1);
    }

    @Test
    void anUnmapThatFailsPartWayWritesBackWhatItUnmapped() {
        compatIoas();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA, APERTURE_START, PAGE))).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA + PAGE, APERTURE_START + PAGE, 2 * PAGE))).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START, 2 * PAGE))).isEqualTo(err(Errno.ENOENT));
        assertThat(result(24).getLong(16)).as("the first mapping went").isEqualTo(PAGE);
        assertThat(callReadOnly(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(2, 0, 0))).as("unmapped, but size cannot be written")
                .isEqualTo(err(Errno.EFAULT));
        assertThat(caller.pinnedPages()).isZero();
    }

    @Test
    void type1SplitsMappings() {
        compatIoas();
        assertThat(decoder.ioctl(IoctlNumbers.VFIO_SET_IOMMU, VfioContainer.TYPE1_IOMMU)).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_MAP_DMA, dmaMap(32, 3, MAP_VA, APERTURE_START, 4 * PAGE))).isZero();
        assertThat(call(IoctlNumbers.VFIO_IOMMU_UNMAP_DMA, dmaUnmap(0, APERTURE_START + PAGE, PAGE))).isZero();
        assertThat(result(24).getLong(16)).isEqualTo(PAGE);
        assertThat(caller.pinCount(MAP_VA + PAGE)).isZero();
        assertThat(caller.pinCount(MAP_VA)).isEqualTo(1);
    }
}
