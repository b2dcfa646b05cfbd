package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PhysicalMemoryTest {
    private final PhysicalMemory memory = PhysicalMemory.create(64L << 20);

    @AfterEach
    void close() {
        memory.close();
    }

    @Test
    void allocationIsDeterministicLowestFirstAndReusesFreedFrames() {
        long a = memory.allocateFrame();
        long b = memory.allocateFrame();
        long c = memory.allocateFrame();
        assertThat(a).isEqualTo(PhysicalMemory.DEFAULT_BASE_ADDRESS);
        assertThat(b).isEqualTo(a + PhysicalMemory.FRAME_BYTES);
        assertThat(c).isEqualTo(b + PhysicalMemory.FRAME_BYTES);
        memory.free(b, PhysicalMemory.FRAME_BYTES);
        assertThat(memory.allocateFrame()).isEqualTo(b);

        try (PhysicalMemory twin = PhysicalMemory.create(64L << 20)) {
            assertThat(twin.allocateFrame()).isEqualTo(a);
            assertThat(twin.allocate(64 << 10, 64 << 10)).isEqualTo(memory.allocate(64 << 10, 64 << 10));
        }
    }

    @Test
    void allocateHonoursAlignmentAndZeroesReusedMemory() {
        memory.allocateFrame();
        long aligned = memory.allocate(16 * PhysicalMemory.FRAME_BYTES, 64 << 10);
        assertThat(aligned & ((64 << 10) - 1)).isZero();
        memory.write64(aligned + 8, 0x1122_3344_5566_7788L);
        memory.free(aligned, 16 * PhysicalMemory.FRAME_BYTES);
        long again = memory.allocate(16 * PhysicalMemory.FRAME_BYTES, 64 << 10);
        assertThat(again).isEqualTo(aligned);
        assertThat(memory.read64(again + 8)).isZero();
    }

    @Test
    void accessToUnallocatedMemoryIsEfaultNotACrash() {
        long frame = memory.allocateFrame();
        assertThatThrownBy(() -> memory.read64(frame + PhysicalMemory.FRAME_BYTES))
                .isInstanceOf(BadPhysicalAddressException.class)
                .satisfies(e -> assertThat(((ErrnoException) e).errno()).isEqualTo(Errno.EFAULT));
        assertThatThrownBy(() -> memory.write64(0, 1)).isInstanceOf(BadPhysicalAddressException.class);
        assertThatThrownBy(() -> memory.read64(Long.MAX_VALUE & ~7)).isInstanceOf(BadPhysicalAddressException.class);
        assertThatThrownBy(() -> memory.read64(-8)).isInstanceOf(BadPhysicalAddressException.class);
        memory.free(frame, PhysicalMemory.FRAME_BYTES);
        assertThatThrownBy(() -> memory.read64(frame)).isInstanceOf(BadPhysicalAddressException.class);
    }

    @Test
    void misalignedAtomicAccessIsRefused() {
        long frame = memory.allocateFrame();
        assertThatThrownBy(() -> memory.read64(frame + 4)).isInstanceOf(BadPhysicalAddressException.class);
        assertThatThrownBy(() -> memory.compareAndSet64(frame + 1, 0, 1)).isInstanceOf(BadPhysicalAddressException.class);
    }

    @Test
    void bulkAccessSpansFramesAndChunksButNotHoles() {
        long run = memory.allocate(PhysicalMemory.CHUNK_BYTES * 2, PhysicalMemory.CHUNK_BYTES);
        long across = run + PhysicalMemory.CHUNK_BYTES - 3;
        memory.writeBytes(across, new byte[] {1, 2, 3, 4, 5, 6});
        assertThat(memory.readBytes(across, 6)).containsExactly(1, 2, 3, 4, 5, 6);
        assertThatThrownBy(() -> memory.readBytes(run + 2 * PhysicalMemory.CHUNK_BYTES - 2, 4))
                .isInstanceOf(BadPhysicalAddressException.class);
    }

    @Test
    void bulkAccessInsideOneChunkRefusesAHoleInAnyBitmapWord() {
        long run = memory.allocate(PhysicalMemory.CHUNK_BYTES, PhysicalMemory.CHUNK_BYTES);
        memory.free(run + 64 * PhysicalMemory.FRAME_BYTES, PhysicalMemory.FRAME_BYTES); // frame 64: bit 0 of the second word
        byte[] pages = new byte[130 * 4096];
        assertThatThrownBy(() -> memory.writeBytes(run, pages)).isInstanceOf(BadPhysicalAddressException.class);
        assertThatThrownBy(() -> memory.readBytes(run + 63 * 4096 + 4095, 2)).isInstanceOf(BadPhysicalAddressException.class);
        assertThatThrownBy(() -> memory.readBytes(run - 4096, 4096)).isInstanceOf(BadPhysicalAddressException.class);
        memory.writeBytes(run, java.util.Arrays.copyOf(pages, 64 * 4096)); // frames 0..63: a whole word
        memory.writeBytes(run + 65 * 4096, pages); // frames 65..194: across three words
        memory.writeBytes(run + 65 * 4096 + 4095, new byte[] {7, 8});
        assertThat(memory.readBytes(run + 65 * 4096 + 4095, 2)).containsExactly(7, 8);
        assertThatThrownBy(() -> memory.writeBytes(run + PhysicalMemory.CHUNK_BYTES - 4096, new byte[8192]))
                .isInstanceOf(BadPhysicalAddressException.class);
    }

    @Test
    void memoryIsSparseUntilWritten() {
        long big = memory.allocate(32L << 20, PhysicalMemory.CHUNK_BYTES);
        assertThat(memory.residentBytes()).isZero();
        assertThat(memory.read64(big + (16L << 20))).isZero();
        memory.write64(big + (16L << 20), 42);
        assertThat(memory.residentBytes()).isEqualTo(PhysicalMemory.CHUNK_BYTES);
        assertThat(memory.read64(big + (16L << 20))).isEqualTo(42);
    }

    @Test
    void allocateRefusesBadArgumentsAndExhaustionWithErrno() {
        assertThatThrownBy(() -> memory.allocate(100, 4096)).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.EINVAL);
        assertThatThrownBy(() -> memory.allocate(4096, 3000)).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.EINVAL);
        assertThatThrownBy(() -> memory.allocate(128L << 20, 4096)).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.ENOMEM);
        assertThatThrownBy(() -> memory.free(memory.baseAddress(), 4096)).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.EINVAL);
        assertThat(memory.allocatedFrames()).isZero();
    }

    @Test
    void compareAndSetUpdatesAtomicallyUnderContention() throws InterruptedException {
        long word = memory.allocateFrame();
        int threads = 4;
        int increments = 20_000;
        CountDownLatch start = new CountDownLatch(1);
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            workers[t] = Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                for (int i = 0; i < increments; i++) {
                    long seen;
                    do {
                        seen = memory.read64(word);
                    } while (!memory.compareAndSet64(word, seen, seen + 1));
                }
            });
        }
        start.countDown();
        for (Thread w : workers) {
            w.join();
        }
        assertThat(memory.read64(word)).isEqualTo((long) threads * increments);
    }

    @Test
    void adoptedSegmentIsSharedWithTheCallerAndGivenBack() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(3 * PhysicalMemory.FRAME_BYTES, 4096);
            ram.set(ValueLayout.JAVA_LONG, 8, 0xfeedL);
            long pa = memory.adopt(ram);
            assertThat(pa & (PhysicalMemory.CHUNK_BYTES - 1)).isZero();
            assertThat(memory.read64(pa + 8)).isEqualTo(0xfeedL);
            memory.write64(pa + 2 * PhysicalMemory.FRAME_BYTES, 7);
            assertThat(ram.get(ValueLayout.JAVA_LONG, 2 * PhysicalMemory.FRAME_BYTES)).isEqualTo(7);
            // The rest of the adopted chunk is reserved but not accessible, and not allocatable.
            assertThatThrownBy(() -> memory.read64(pa + 3 * PhysicalMemory.FRAME_BYTES)).isInstanceOf(BadPhysicalAddressException.class);
            assertThat(memory.allocateFrame()).isGreaterThanOrEqualTo(pa + PhysicalMemory.CHUNK_BYTES);
            assertThatThrownBy(() -> memory.free(pa, PhysicalMemory.FRAME_BYTES)).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.EINVAL);
            memory.unadopt(pa, ram.byteSize());
            assertThatThrownBy(() -> memory.read64(pa)).isInstanceOf(BadPhysicalAddressException.class);
        }
    }

    @Test
    void ownerWordIsPerFrameAndResetByFree() {
        long a = memory.allocate(2 * PhysicalMemory.FRAME_BYTES, 4096);
        memory.ownerWord(a, 5);
        memory.ownerWord(a + PhysicalMemory.FRAME_BYTES + 8, 9);
        assertThat(memory.ownerWord(a + 100)).isEqualTo(5);
        assertThat(memory.ownerWord(a + PhysicalMemory.FRAME_BYTES)).isEqualTo(9);
        memory.free(a, 2 * PhysicalMemory.FRAME_BYTES);
        AtomicLong b = new AtomicLong(memory.allocateFrame());
        assertThat(memory.ownerWord(b.get())).isZero();
    }
}
