package dev.jiommu.driver.vtd;

import dev.jiommu.hw.DmaTestDevice;
import dev.jiommu.hw.Translator;
import dev.jiommu.hw.vtd.VtdConfig;
import dev.jiommu.iommu.IommuDriver;
import dev.jiommu.iommufd.Iommufd;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static dev.jiommu.driver.vtd.VtdIommufdFixture.USER_VA;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * PRI end to end: a device's translation request fails, it sends a page request, the unit queues
 * it in the PRQ, the driver delivers it to the HWPT's fault queue, the user maps the page and
 * answers, the response goes back as a page group response descriptor, and the device retries.
 */
class VtdPriTest {
    static final int RID = 0x0020;
    static final int RW = Iommufd.MAP_FIXED_IOVA | Iommufd.MAP_READABLE | Iommufd.MAP_WRITEABLE;

    record Fault(int flags, int devId, int pasid, int grpid, int perm, long addr, int cookie) {
        static Fault parse(byte[] b) {
            ByteBuffer in = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            int flags = in.getInt();
            int devId = in.getInt();
            int pasid = in.getInt();
            int grpid = in.getInt();
            int perm = in.getInt();
            in.getInt();
            long addr = in.getLong();
            in.getInt();
            return new Fault(flags, devId, pasid, grpid, perm, addr, in.getInt());
        }
    }

    static byte[] response(int cookie, int code) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(cookie).putInt(code).array();
    }

    @Test
    void pageRequestIsAnsweredAndTheDeviceRetries() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.atsAndPri(32, 30_000));
            int ioas = f.ctx.ioasAlloc();
            Iommufd.FaultQueueAlloc fq = f.ctx.faultQueueAlloc(0);
            int hwpt = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, d.devId(), ioas, 0, null, fq.faultId());
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, hwpt);
            f.ctx.ioasMap(ioas, RW, USER_VA, 4096, 0x10_0000);

            Future<Integer> dma = pool.submit(() -> d.dma().fill(Translator.NO_PASID, 0x10_0000, 2 * 4096, (byte) 0x42));
            byte[] record = new byte[40];
            assertThat(fq.file().read(record, Duration.ofSeconds(30))).isEqualTo(40);
            Fault fault = Fault.parse(record);
            assertThat(fault.addr()).isEqualTo(0x10_1000);
            assertThat(fault.devId()).isEqualTo(d.devId());
            assertThat(fault.perm() & 2).as("write asked").isNotZero();
            assertThat(fault.flags() & 2).as("last page in group").isNotZero();
            assertThat(fault.flags() & 1).as("no PASID").isZero();

            f.ctx.ioasMap(ioas, RW, USER_VA + 4096, 4096, 0x10_1000);
            assertThat(fq.file().write(response(fault.cookie(), 0))).isEqualTo(8);
            assertThat(dma.get(30, TimeUnit.SECONDS)).isZero();
            assertThat(f.user.read(USER_VA, 2 * 4096)).containsOnly(0x42);
            assertThat(d.dma().pageRequests()).isEqualTo(1);
            assertThat(d.dma().retries()).isEqualTo(1);
            assertThat(f.driver.pageRequestCounters()).containsExactly(1, 1);
            assertThat(f.unit.stats().pageRequests()).isEqualTo(1);
            assertThat(f.unit.stats().pageResponses()).isEqualTo(1);
            assertThat(f.driver.faultLog()).as("page requests are not faults").isEmpty();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void invalidResponseFailsTheDma() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.atsAndPri(32, 30_000));
            int ioas = f.ctx.ioasAlloc();
            Iommufd.FaultQueueAlloc fq = f.ctx.faultQueueAlloc(0);
            int hwpt = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, d.devId(), ioas, 0, null, fq.faultId());
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, hwpt);
            Future<Integer> dma = pool.submit(() -> d.dma().read(Translator.NO_PASID, 0x30_0000, 0, 8));
            byte[] record = new byte[40];
            assertThat(fq.file().read(record, Duration.ofSeconds(30))).isEqualTo(40);
            Fault fault = Fault.parse(record);
            assertThat(fault.perm() & 1).as("read asked").isNotZero();
            fq.file().write(response(fault.cookie(), 1));
            assertThat(dma.get(30, TimeUnit.SECONDS)).isEqualTo(DmaTestDevice.PAGE_REQUEST_FAILED);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void pageRequestWithoutAFaultQueueIsAnsweredInvalidAtOnce() {
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.atsAndPri(32, 30_000));
            int ioas = f.ctx.ioasAlloc();
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, ioas);
            assertThat(d.dma().read(Translator.NO_PASID, 0x30_0000, 0, 8)).isEqualTo(DmaTestDevice.PAGE_REQUEST_FAILED);
            assertThat(f.driver.pageRequestCounters()).containsExactly(1, 1);
        }
    }

    @Test
    void detachAnswersOutstandingGroupsInvalid() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (VtdIommufdFixture f = new VtdIommufdFixture(VtdConfig.scalable())) {
            VtdIommufdFixture.Dev d = f.device(RID, 20, DmaTestDevice.Options.atsAndPri(32, 30_000));
            int ioas = f.ctx.ioasAlloc();
            Iommufd.FaultQueueAlloc fq = f.ctx.faultQueueAlloc(0);
            int hwpt = f.ctx.hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, d.devId(), ioas, 0, null, fq.faultId());
            f.ctx.attachDevice(d.devId(), IommuDriver.NO_PASID, hwpt);
            Future<Integer> dma = pool.submit(() -> d.dma().read(Translator.NO_PASID, 0x30_0000, 0, 8));
            byte[] record = new byte[40];
            assertThat(fq.file().read(record, Duration.ofSeconds(30))).isEqualTo(40);
            f.ctx.detachDevice(d.devId(), IommuDriver.NO_PASID);
            assertThat(dma.get(30, TimeUnit.SECONDS)).isEqualTo(DmaTestDevice.PAGE_REQUEST_FAILED);
        } finally {
            pool.shutdownNow();
        }
    }
}
