package dev.jiommu.driver.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommufd.Iommufd;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

import static dev.jiommu.driver.vtd.VtdIommufdFixture.USER_VA;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Random map, unmap, replace and DMA sequences through iommufd, the VT-d driver and the emulated
 * unit (with a small IOTLB, so evictions happen), against a model of what each IOVA page maps:
 * a device reaches exactly what is mapped for it, so no invalidation the driver owes was skipped.
 */
class VtdRandomizedTest {
    static final int RID = 0x0028;
    static final int SLOTS = 64;
    static final long IOVA = 0x4000_0000L;
    static final int RW = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        long[] seeds = {1L, 0x5eed_0f_10ff_e7L, 0xdead_beef_cafe_f00dL};
        String property = System.getProperty("jiommu.seed");
        for (boolean scalable : new boolean[] {false, true}) {
            for (long seed : seeds) {
                out.add(Arguments.of(scalable, String.format("0x%x", seed)));
            }
            if (property != null && !property.isBlank()) {
                out.add(Arguments.of(scalable, property.trim()));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "scalable={0} seed={1}")
    @MethodSource("cases")
    void deviceReachesExactlyWhatIsMapped(boolean scalable, String seedText) {
        long seed = seedText.startsWith("0x") ? Long.parseUnsignedLong(seedText.substring(2), 16) : Long.parseLong(seedText);
        SplittableRandom random = new SplittableRandom(seed);
        VtdConfig config = (scalable ? VtdConfig.scalable() : VtdConfig.qemuDefault()).withCacheSizes(16, 4, 4);
        try (VtdIommufdFixture f = new VtdIommufdFixture(config)) {
            VtdIommufdFixture.Dev d = f.device(RID);
            int[] ioas = {f.ctx.ioasAlloc(), f.ctx.ioasAlloc()};
            // model[i][slot] = user page index mapped at IOVA slot in IOAS i, or absent
            List<TreeMap<Integer, Integer>> model = List.of(new TreeMap<>(), new TreeMap<>());
            int current = 0;
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas[current]);
            byte stamp = 1;
            for (int step = 0; step < 1500; step++) {
                String where = String.format("seed=%s step=%d", seedText, step);
                int op = random.nextInt(50);
                int which = random.nextInt(2);
                int slot = random.nextInt(SLOTS);
                long iova = IOVA + slot * 4096L;
                if (op < 12) {
                    if (!model.get(which).containsKey(slot)) {
                        int page = random.nextInt(256);
                        f.ctx.ioasMap(ioas[which], RW, USER_VA + page * 4096L, 4096, iova);
                        model.get(which).put(slot, page);
                    }
                } else if (op < 18) {
                    if (model.get(which).remove(slot) != null) {
                        f.ctx.ioasUnmap(ioas[which], iova, 4096);
                    }
                } else if (op == 18) {
                    current ^= 1;
                    f.ctx.replaceDevice(d.devId(), IommuDriver.NO_PASID, ioas[current]);
                } else {
                    Integer page = model.get(current).get(slot);
                    stamp = (byte) (stamp == 127 ? 1 : stamp + 1);
                    int status = d.dma().fill(Translator.NO_PASID, iova + 64, 8, stamp);
                    if (page == null) {
                        assertThat(status).as(where + ": unmapped slot %d must fault", slot).isNotZero();
                    } else {
                        assertThat(status).as(where + ": mapped slot %d", slot).isZero();
                        assertThat(f.user.read(USER_VA + page * 4096L + 64, 8)).as(where).containsOnly(stamp);
                    }
                }
            }
            assertThat(f.unit.stats().iotlbEvictions()).as("seed=%s: the small IOTLB evicted: %s", seedText, f.unit.stats()).isPositive();
        }
    }
}
