package dev.jiommu.iommufd;

import dev.jiommu.driver.mock.MockIommuDriver;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Producers and a consumer at once on the fault queue and on a vEVENTQ: every fault is read exactly
 * once and answered, and every vIOMMU event is either read or counted as lost from the sequence
 * gaps, exactly.
 */
class EventQueueConcurrencyTest extends IommufdFixture {
    private static final int PRODUCERS = 3;
    private static final int PER_PRODUCER = 400;

    @Test
    void faultsFromSeveralProducersAreReadOnceAndAnswered() throws Exception {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        Iommufd.FaultQueueAlloc fault = ctx().faultQueueAlloc(0);
        int hwpt = ctx().hwptAlloc(Iommufd.HWPT_ALLOC_FAULT_ID_VALID, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, fault.faultId());
        test.mockDomainReplace(md.stdevId(), hwpt);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] producers = new Thread[PRODUCERS];
        for (int p = 0; p < PRODUCERS; p++) {
            int producer = p;
            producers[p] = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < PER_PRODUCER; i++) {
                        // grpid names the producer, addr the fault: together they identify it.
                        test.triggerIopf(md.idevId(), 0, producer, 1, (long) i << 12);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
        }
        Set<Long> seen = new HashSet<>();
        byte[] buffer = new byte[40 * 16];
        int total = PRODUCERS * PER_PRODUCER;
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (seen.size() < total && System.nanoTime() < deadline && failure.get() == null) {
            int read = fault.file().read(buffer, Duration.ofMillis(200));
            ByteBuffer records = ByteBuffer.wrap(buffer, 0, read).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer responses = ByteBuffer.allocate(read / 40 * 8).order(ByteOrder.LITTLE_ENDIAN);
            for (int at = 0; at < read; at += 40) {
                long key = ((long) records.getInt(at + 12) << 40) | records.getLong(at + 24);
                assertThat(seen.add(key)).as("fault read twice: grpid %d addr 0x%x", records.getInt(at + 12), records.getLong(at + 24)).isTrue();
                responses.putInt(records.getInt(at + 36)).putInt(0);
            }
            if (read > 0) {
                assertThat(fault.file().write(responses.array())).isEqualTo(responses.capacity());
            }
        }
        for (Thread t : producers) {
            t.join();
        }
        assertThat(failure.get()).isNull();
        assertThat(seen).hasSize(total);
    }

    @Test
    void vEventsAreReadOrCountedLostExactly() throws Exception {
        int ioas = testIoctlIoasAlloc();
        IommufdSelftest.MockDomain md = testCmdMockDomain(ioas);
        int parent = ctx().hwptAlloc(Iommufd.HWPT_ALLOC_NEST_PARENT, md.idevId(), ioas, Iommufd.HWPT_DATA_NONE, null, 0);
        int viommu = ctx().viommuAlloc(0, 0xdeadbeef, md.idevId(), parent, null).viommuId();
        ctx().vdeviceAlloc(viommu, md.idevId(), 5);
        test.mockDomainReplace(md.stdevId(), ctx().hwptAlloc(0, md.idevId(), viommu, MockIommuDriver.HWPT_DATA_SELFTEST, new byte[8], 0));
        IommufdFile file = ctx().veventqAlloc(0, viommu, IommufdSelftest.VEVENTQ_TYPE_SELFTEST, 4).file();

        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] producers = new Thread[PRODUCERS];
        for (int p = 0; p < PRODUCERS; p++) {
            producers[p] = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < PER_PRODUCER; i++) {
                        test.triggerVevent(md.idevId());
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
        }
        long received = 0;
        long lost = 0;
        int previous = -1;
        byte[] buffer = new byte[12 * 8];
        boolean producing = true;
        while (producing || file.poll() != 0) {
            producing = false;
            for (Thread t : producers) {
                producing |= t.isAlive();
            }
            int read = file.read(buffer, Duration.ofMillis(20));
            ByteBuffer b = ByteBuffer.wrap(buffer, 0, read).order(ByteOrder.LITTLE_ENDIAN);
            int at = 0;
            while (at < read) {
                int flags = b.getInt(at);
                int sequence = b.getInt(at + 4);
                if (flags == 1) {
                    lost += sequence - previous; // the marker carries the last dropped number
                    at += 8;
                } else {
                    lost += sequence - previous - 1;
                    received++;
                    at += 12;
                }
                previous = sequence;
            }
        }
        for (Thread t : producers) {
            t.join();
        }
        assertThat(failure.get()).isNull();
        assertThat(received + lost).as("received %d, lost %d", received, lost).isEqualTo((long) PRODUCERS * PER_PRODUCER);
        assertThat(received).isPositive();
    }
}
