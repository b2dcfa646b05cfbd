package dev.jiommu.hw;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The unit lock's two sides: readers back off from a writer, a writer waits for readers, re-entry is a bug. */
class UnitLockTest {
    @Test
    void aReaderFailsWhileAWriterHoldsOrAfterOneCameAndWent() {
        UnitLock lock = new UnitLock();
        long before = lock.readEpoch();
        lock.lock();
        assertThat(lock.tryReadLock(lock.readEpoch())).as("epoch odd: writer inside").isEqualTo(-1);
        lock.unlock();
        assertThat(lock.tryReadLock(before)).as("epoch moved since it was read").isEqualTo(-1);
        int slot = lock.tryReadLock(lock.readEpoch());
        assertThat(slot).isNotNegative();
        lock.countReadHit(slot);
        lock.readUnlock(slot);
        lock.lock();
        assertThat(lock.readHits()).isEqualTo(1);
        lock.unlock();
    }

    @Test
    void aWriterWaitsForTheReaderInside() throws InterruptedException {
        UnitLock lock = new UnitLock();
        int slot = lock.tryReadLock(lock.readEpoch());
        Thread writer = new Thread(() -> {
            lock.lock();
            lock.unlock();
        });
        writer.start();
        writer.join(200);
        assertThat(writer.isAlive()).as("the writer waits while the reader is inside").isTrue();
        lock.readUnlock(slot);
        writer.join(10_000);
        assertThat(writer.isAlive()).isFalse();
    }

    @Test
    void takingTheExclusiveSideFromTheSharedSideIsABugNotAHang() {
        UnitLock lock = new UnitLock();
        int slot = lock.tryReadLock(lock.readEpoch());
        assertThatThrownBy(lock::lock).isInstanceOf(IllegalStateException.class);
        lock.readUnlock(slot);
        lock.lock();
        assertThat(lock.heldByCurrentThread()).isTrue();
        lock.unlock();
    }
}
