package dev.jiommu.bench;

import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The baseline of every page-table benchmark: four dependent 64-bit reads and one write on off-heap
 * memory, the memory work of a four-level walk that updates its leaf, with none of the checking.
 *
 * <p>Four 4 KiB "tables" sit in one segment of a shared arena (the kind {@link dev.jiommu.mem.PhysicalMemory}
 * uses). The slot read in each holds the offset of the slot to read in the next, so no read can start
 * before the previous one returned; the last value names the slot that is written. Slots are at
 * different indexes, so each read touches its own cache line, as a real walk does. Plain (not
 * acquire/release) accesses: this is the floor, raw memory.
 */
@State(Scope.Thread)
public class DependentReadChain {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final long TABLE_BYTES = 4096;
    /** One slot index per table, top table first; the last entry is where the write lands. */
    private static final int[] SLOTS = {3, 141, 277, 405, 500};

    private Arena arena;
    private MemorySegment memory;
    /** Offset of the first slot; a field, so the JIT cannot fold the chain into constants. */
    private long firstOffset;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        memory = arena.allocate(4 * TABLE_BYTES, TABLE_BYTES);
        for (int t = 0; t < 4; t++) {
            long slot = t * TABLE_BYTES + SLOTS[t] * 8L;
            long next = (t < 3 ? (t + 1) * TABLE_BYTES : 3 * TABLE_BYTES) + SLOTS[t + 1] * 8L;
            memory.set(LONG, slot, next);
        }
        firstOffset = SLOTS[0] * 8L;
        long end = run();
        if (end != 3 * TABLE_BYTES + SLOTS[4] * 8L) {
            throw new IllegalStateException("baseline chain ends at offset " + end);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** Runs the chain once; {@return the offset the last read produced (where it wrote)} */
    public long run() {
        long a = memory.get(LONG, firstOffset);
        long b = memory.get(LONG, a);
        long c = memory.get(LONG, b);
        long d = memory.get(LONG, c);
        memory.set(LONG, d, c);
        return d;
    }
}
