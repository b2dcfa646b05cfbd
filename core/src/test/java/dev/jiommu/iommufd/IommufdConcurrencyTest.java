package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockDevice;
import dev.jiommu.pt.Access;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Many threads on one context: mappers each own a slice of IOVA and map/unmap it over and over,
 * while a DMA thread reads through the mock device. A mapper checks its own slice after every map,
 * and the device may only ever see an address that some mapper mapped, at the right place.
 */
class IommufdConcurrencyTest extends IommufdFixture {
    private static final int MAPPERS = 4;
    private static final int ROUNDS = 300;

    @Test
    void concurrentMapUnmapAndDmaStayConsistent() throws Exception {
        int ioas = testIoctlIoasAlloc();
        int hwpt = testCmdMockDomain(ioas).hwptId();
        MockDevice device = mock().devices().getFirst();
        long slice = 4 * PAGE_SIZE;
        long base = MOCK_APERTURE_START;
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CyclicBarrier start = new CyclicBarrier(MAPPERS + 1);
        CountDownLatch mappersDone = new CountDownLatch(MAPPERS);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < MAPPERS; t++) {
            long iova = base + t * slice;
            long va = SCRATCH_VA + t * slice;
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                    for (int round = 0; round < ROUNDS; round++) {
                        testIoctlIoasMapFixed(ioas, va, slice, iova);
                        checkMockIova(hwpt, va, iova, slice);
                        testIoctlIoasUnmap(ioas, iova, slice);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    mappersDone.countDown();
                }
            }));
        }
        Thread dma = Thread.ofPlatform().start(() -> {
            try {
                start.await();
                while (mappersDone.getCount() > 0) {
                    for (int t = 0; t < MAPPERS; t++) {
                        long iova = base + t * slice + PAGE_SIZE;
                        long pa = device.translate(iova, Access.READ);
                        if (pa != -1 && pa != user().physicalAddress(SCRATCH_VA + t * slice + PAGE_SIZE)) {
                            throw new AssertionError("device read iova 0x" + Long.toHexString(iova) + " at a wrong address");
                        }
                    }
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        for (Thread thread : threads) {
            thread.join();
        }
        dma.join();
        assertThat(failure.get()).isNull();
        assertThat(device.canRead(base + PAGE_SIZE)).isFalse();
        checkRefs(SCRATCH_VA, MAPPERS * slice, 0);
    }
}
