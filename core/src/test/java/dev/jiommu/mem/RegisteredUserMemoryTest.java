package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.jiommu.mem.UserMemory.PAGE_BYTES;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RegisteredUserMemoryTest {
    private final PhysicalMemory memory = PhysicalMemory.create(64L << 20);
    private final RegisteredUserMemory user = new RegisteredUserMemory(memory);

    @AfterEach
    void close() {
        memory.close();
    }

    private static Errno errnoOf(Throwable t) {
        return ((ErrnoException) t).errno();
    }

    @Test
    void pinReturnsThePhysicalPagesBehindTheVaAndCountsPins() {
        long pa = user.register(0x10_0000, 8 * PAGE_BYTES, PAGE_BYTES, true);
        PinnedPages first = user.pin(0x10_0000 + PAGE_BYTES, 3 * PAGE_BYTES, true);
        PinnedPages second = user.pin(0x10_0000 + 2 * PAGE_BYTES, PAGE_BYTES, false);
        assertThat(first.pageCount()).isEqualTo(3);
        assertThat(first.physicalAddress(0)).isEqualTo(pa + PAGE_BYTES);
        assertThat(first.physicalAddress(2)).isEqualTo(pa + 3 * PAGE_BYTES);
        assertThat(user.pinCount(0x10_0000)).isZero();
        assertThat(user.pinCount(0x10_0000 + 2 * PAGE_BYTES)).isEqualTo(2);
        assertThat(user.pinnedPages()).isEqualTo(4);
        user.unpin(first);
        user.unpin(second);
        assertThat(user.pinnedPages()).isZero();
        assertThatThrownBy(() -> user.unpin(first)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void refusedPinChangesNothing() {
        user.register(0x10_0000, 2 * PAGE_BYTES, PAGE_BYTES, true);
        user.register(0x20_0000, 2 * PAGE_BYTES, PAGE_BYTES, false);
        assertThatThrownBy(() -> user.pin(0x10_0000, 3 * PAGE_BYTES, false)).satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EFAULT));
        assertThatThrownBy(() -> user.pin(0x20_0000, PAGE_BYTES, true)).satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EFAULT));
        assertThatThrownBy(() -> user.pin(0x10_0001, PAGE_BYTES, false)).satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EINVAL));
        assertThatThrownBy(() -> user.pin(0x10_0000, 0, false)).satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EINVAL));
        assertThat(user.pinnedPages()).isZero();
        assertThat(user.pinCount(0x10_0000)).isZero();
    }

    /** The range is checked region by region before anything is allocated: a huge length over nothing is EFAULT, at once. */
    @Test
    void aHugePinOverUnmappedMemoryIsEfaultNotAnAllocation() {
        user.register(0x10_0000, 2 * PAGE_BYTES, PAGE_BYTES, true);
        assertThatThrownBy(() -> user.pin(0x10_0000, 1L << 42, false)).isInstanceOf(ErrnoException.class)
                .satisfies(e -> assertThat(((ErrnoException) e).errno()).isEqualTo(Errno.EFAULT));
        assertThatThrownBy(() -> user.pin(0x10_0000, 1L << 46, false)).as("more pages than an int counts")
                .isInstanceOf(ErrnoException.class);
        assertThat(user.pinnedPages()).isZero();
    }

    @Test
    void pinCrossesAdjacentRegions() {
        long a = user.register(0x10_0000, PAGE_BYTES, PAGE_BYTES, true);
        long b = user.register(0x10_0000 + PAGE_BYTES, PAGE_BYTES, PAGE_BYTES, true);
        PinnedPages pages = user.pin(0x10_0000, 2 * PAGE_BYTES, true);
        assertThat(pages.physicalAddress(0)).isEqualTo(a);
        assertThat(pages.physicalAddress(1)).isEqualTo(b);
        user.unpin(pages);
    }

    @Test
    void registeredSegmentIsWhatDmaSees() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(4 * PAGE_BYTES, PAGE_BYTES);
            ram.set(ValueLayout.JAVA_LONG, PAGE_BYTES + 16, 0xabcdL);
            user.register(0x4000_0000L, ram, true);
            PinnedPages pages = user.pin(0x4000_0000L + PAGE_BYTES, PAGE_BYTES, true);
            assertThat(memory.read64(pages.physicalAddress(0) + 16)).isEqualTo(0xabcdL);
            memory.write64(pages.physicalAddress(0) + 24, 0x1234L);
            assertThat(ram.get(ValueLayout.JAVA_LONG, PAGE_BYTES + 24)).isEqualTo(0x1234L);
            assertThatThrownBy(() -> user.unregister(0x4000_0000L)).satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EBUSY));
            user.unpin(pages);
            user.unregister(0x4000_0000L);
            assertThat(memory.allocatedFrames()).isZero();
        }
    }

    @Test
    void overlappingRegistrationIsEexist() {
        user.register(0x10_0000, 4 * PAGE_BYTES, PAGE_BYTES, true);
        assertThatThrownBy(() -> user.register(0x10_0000 + 3 * PAGE_BYTES, 2 * PAGE_BYTES, PAGE_BYTES, true))
                .satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EEXIST));
        assertThatThrownBy(() -> user.register(0x0F_F000, 2 * PAGE_BYTES, PAGE_BYTES, true))
                .satisfies(e -> assertThat(errnoOf(e)).isEqualTo(Errno.EEXIST));
        user.register(0x10_0000 + 4 * PAGE_BYTES, PAGE_BYTES, PAGE_BYTES, true);
    }

    @Test
    void physicalAlignmentLetsAVmmBackRamWithHugePages() {
        memory.allocateFrame();
        long pa = user.register(0x4000_0000L, 4L << 20, 2L << 20, true);
        assertThat(pa & ((2L << 20) - 1)).isZero();
    }
}
