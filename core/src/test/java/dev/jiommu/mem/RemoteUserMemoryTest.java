package dev.jiommu.mem;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RemoteUserMemoryTest {
    private static final int PAGE = (int) UserMemory.PAGE_BYTES;
    private static final int PARENT = 100;
    private static final int CHILD = 101;
    private static final long VA = 0x10_0000;

    /** Processes as page maps; a page is writable unless listed read-only; a gone process reads nothing. */
    private static final class Processes implements RemoteUserMemory.ProcessAccess {
        final Map<Integer, Map<Long, byte[]>> memory = new HashMap<>();
        final Set<Long> readOnly = new HashSet<>();
        final Set<Long> shared = new HashSet<>();
        final Set<Long> huge = new HashSet<>();

        void map(int pid, long va, int pages) {
            for (int i = 0; i < pages; i++) {
                memory.computeIfAbsent(pid, p -> new HashMap<>()).put(va + (long) i * PAGE, new byte[PAGE]);
            }
        }

        byte get(int pid, long va) {
            return memory.get(pid).get(va & -PAGE)[(int) (va & (PAGE - 1))];
        }

        void set(int pid, long va, byte b) {
            memory.get(pid).get(va & -PAGE)[(int) (va & (PAGE - 1))] = b;
        }

        @Override
        public long read(int pid, long va, byte[] dst, int offset, int length) {
            for (int i = 0; i < length; i++) {
                Map<Long, byte[]> m = memory.get(pid);
                byte[] page = m == null ? null : m.get((va + i) & -PAGE);
                if (page == null) {
                    return i == 0 ? -Errno.EFAULT.number() : i;
                }
                dst[offset + i] = page[(int) ((va + i) & (PAGE - 1))];
            }
            return length;
        }

        @Override
        public long write(int pid, long va, byte[] src, int offset, int length) {
            for (int i = 0; i < length; i++) {
                Map<Long, byte[]> m = memory.get(pid);
                byte[] page = m == null ? null : m.get((va + i) & -PAGE);
                if (page == null || readOnly.contains((va + i) & -PAGE)) {
                    return i == 0 ? -Errno.EFAULT.number() : i;
                }
                page[(int) ((va + i) & (PAGE - 1))] = src[offset + i];
            }
            return length;
        }

        @Override
        public boolean sharedMemory(int pid, long va) {
            return shared.contains(va & -PAGE);
        }

        @Override
        public long hugePageBytes(int pid, long va) {
            return huge.contains(va & -(2L << 20)) ? 2L << 20 : 0;
        }
    }

    private final PhysicalMemory physical = PhysicalMemory.create(64L << 20);
    private final Processes processes = new Processes();
    private final RemoteUserMemory user = new RemoteUserMemory(physical, processes, PARENT);

    @Test
    void samePagePinnedTwiceIsOneFrameWithTwoPins() {
        processes.map(PARENT, VA, 2);
        PinnedPages a = user.pin(VA, 2L * PAGE, true);
        PinnedPages b = user.pin(VA + PAGE, PAGE, false);
        assertThat(b.physicalAddress(0)).isEqualTo(a.physicalAddress(1));
        assertThat(user.pinCount(VA + PAGE)).isEqualTo(2);
        assertThat(user.physicalAddress(VA + PAGE + 5)).isEqualTo(a.physicalAddress(1) + 5);
        user.unpin(a);
        assertThat(user.pinCount(VA)).isZero();
        assertThat(user.pinCount(VA + PAGE)).isEqualTo(1);
        user.unpin(b);
        assertThat(user.pinnedPages()).isZero();
        assertThat(physical.allocatedFrames()).as("frames freed at the last unpin").isZero();
    }

    @Test
    void pinOfAnUnmappedPageIsEfaultAndPinsNothing() {
        processes.map(PARENT, VA, 1);
        assertThatThrownBy(() -> user.pin(VA, 2L * PAGE, false))
                .isInstanceOf(ErrnoException.class).extracting(e -> ((ErrnoException) e).errno()).isEqualTo(Errno.EFAULT);
        assertThat(user.pinCount(VA)).isZero();
        assertThat(physical.allocatedFrames()).isZero();
    }

    @Test
    void writablePinOfReadOnlyMemoryIsEfaultButAReadOnlyPinWorks() {
        processes.map(PARENT, VA, 1);
        processes.readOnly.add(VA);
        assertThatThrownBy(() -> user.pin(VA, PAGE, true)).isInstanceOf(ErrnoException.class);
        user.unpin(user.pin(VA, PAGE, false));
    }

    @Test
    void pinnedFramesAreSyncedWithTheProcessAroundDeviceAccess() {
        processes.map(PARENT, VA, 1);
        PinnedPages p = user.pin(VA, PAGE, true);
        processes.set(PARENT, VA + 3, (byte) 9);
        assertThat(physical.readBytes(p.physicalAddress(0) + 3, 1)[0]).as("before syncIn").isZero();
        user.syncIn();
        assertThat(physical.readBytes(p.physicalAddress(0) + 3, 1)[0]).isEqualTo((byte) 9);
        physical.writeBytes(p.physicalAddress(0) + 4, new byte[] {42});
        user.syncOut();
        assertThat(processes.get(PARENT, VA + 4)).isEqualTo((byte) 42);
        assertThat(processes.get(PARENT, VA + 3)).isEqualTo((byte) 9);
        user.unpin(p);
    }

    @Test
    void aCallsOwnWriteToPinnedMemoryReachesTheFrameAndIsNotUndoneBySyncOut() {
        processes.map(PARENT, VA, 1);
        PinnedPages p = user.pin(VA, PAGE, true);
        user.syncIn();
        user.write(VA + 10, new byte[] {33});
        assertThat(physical.readBytes(p.physicalAddress(0) + 10, 1)[0]).as("the frame").isEqualTo((byte) 33);
        user.syncOut();
        assertThat(processes.get(PARENT, VA + 10)).isEqualTo((byte) 33);
        user.unpin(p);
    }

    @Test
    void deviceWriteToAPageUnpinnedInTheSameCallReachesTheProcess() {
        processes.map(PARENT, VA, 1);
        PinnedPages p = user.pin(VA, PAGE, true);
        physical.writeBytes(p.physicalAddress(0), new byte[] {7});
        user.unpin(p);
        assertThat(processes.get(PARENT, VA)).isEqualTo((byte) 7);
    }

    @Test
    void pageAForkedChildPinnedFromSharedMemoryIsTheParentsAfterTheChildIsGone() {
        processes.map(PARENT, VA, 2);
        processes.map(CHILD, VA, 2);
        processes.shared.add(VA);
        user.caller(CHILD);
        PinnedPages p = user.pin(VA, 2L * PAGE, true);
        user.caller(PARENT);
        processes.memory.remove(CHILD);
        processes.set(PARENT, VA, (byte) 1);
        processes.set(PARENT, VA + PAGE, (byte) 1);
        user.syncIn();
        assertThat(physical.readBytes(p.physicalAddress(0), 1)[0]).as("shared page: the parent's bytes").isEqualTo((byte) 1);
        assertThat(physical.readBytes(p.physicalAddress(1), 1)[0]).as("private page: the child's last copy").isZero();
        physical.writeBytes(p.physicalAddress(0) + 1, new byte[] {5});
        physical.writeBytes(p.physicalAddress(1) + 1, new byte[] {5});
        user.syncOut();
        assertThat(processes.get(PARENT, VA + 1)).isEqualTo((byte) 5);
        assertThat(processes.get(PARENT, VA + PAGE + 1)).as("a gone child's private page is not the parent's").isZero();
        user.unpin(p);
    }

    @Test
    void hugetlbMemoryGetsContiguousFramesPerHugePage() {
        long huge = 2L << 20;
        processes.map(PARENT, huge, 512);
        processes.huge.add(huge);
        PinnedPages a = user.pin(huge + 10L * PAGE, 2L * PAGE, false);
        PinnedPages b = user.pin(huge, PAGE, false);
        assertThat(a.physicalAddress(0) - b.physicalAddress(0)).isEqualTo(10L * PAGE);
        assertThat(b.physicalAddress(0) % huge).isZero();
        user.unpin(a);
        user.unpin(b);
        assertThat(physical.allocatedFrames()).as("the block goes with its last page").isZero();
    }

    @Test
    void readsOfOneCallShareOneFetchYetSeeTheCallsOwnWritesAndANewCallRereads() {
        processes.map(PARENT, VA, 1);
        processes.set(PARENT, VA + 8, (byte) 3);
        user.caller(PARENT);
        assertThat(user.read(VA, 4)).hasSize(4);
        processes.set(PARENT, VA + 8, (byte) 4);
        assertThat(user.read(VA + 8, 1)[0]).as("same call: the first fetch").isEqualTo((byte) 3);
        user.write(VA + 8, new byte[] {9});
        assertThat(user.read(VA + 8, 1)[0]).as("the call's own write").isEqualTo((byte) 9);
        processes.set(PARENT, VA + 8, (byte) 5);
        user.caller(PARENT);
        assertThat(user.read(VA + 8, 1)[0]).as("a new call").isEqualTo((byte) 5);
    }

    @Test
    void aMappingMadeByAChildPinsTheChildsPagesAndNothingOnceTheChildIsGone() {
        processes.map(PARENT, VA, 2);
        processes.map(CHILD, VA, 2);
        processes.set(CHILD, VA, (byte) 6);
        assertThat(user.mappingSource()).as("the owner's own mappings").isSameAs(user);
        user.caller(CHILD);
        UserMemory childs = user.mappingSource();
        user.caller(PARENT);
        PinnedPages p = childs.pin(VA, PAGE, false);
        assertThat(physical.readBytes(p.physicalAddress(0), 1)[0]).isEqualTo((byte) 6);
        processes.memory.remove(CHILD);
        assertThatThrownBy(() -> childs.pin(VA + PAGE, PAGE, false)).isInstanceOf(ErrnoException.class);
        assertThat(childs.pin(VA, PAGE, false).physicalAddress(0)).as("a page already pinned needs no process")
                .isEqualTo(p.physicalAddress(0));
        assertThat(user.pinCount(VA)).isEqualTo(2);
    }

    @Test
    void unpinnedPageHasAnAddressNoFrameHas() {
        processes.map(PARENT, VA, 1);
        assertThat(user.physicalAddress(VA) & RemoteUserMemory.UNPINNED_TAG).isNotZero();
        assertThatThrownBy(() -> user.physicalAddress(VA + PAGE)).isInstanceOf(ErrnoException.class);
    }
}
