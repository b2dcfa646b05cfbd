package dev.jiommu.hw;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The lock of one emulated IOMMU unit: an exclusive side for everything that reads or changes the
 * unit's state, and a shared side for DMA that only reads it (IOTLB hits), so two devices behind
 * one unit do not serialize on their hits.
 *
 * <p>The exclusive side is test-and-test-and-set on the epoch (even to odd), spinning briefly
 * and then yielding, never parking; waiters never sleep in the kernel, which keeps two devices
 * behind one unit from collapsing into park/unpark hand-offs. Holding it, with the epoch odd, an
 * exclusive holder waits until no shared holder remains, so nothing it then changes (an IOTLB
 * entry it drops, a register it latches) is seen by a reader half-way, and no reader that started
 * before it still uses what it drops once it releases the lock (the epoch even again).
 *
 * <p>The shared side is a reader indicator striped over padded slots picked by thread id: a reader
 * claims its slot with one compare-and-set (full fence) and then reads the epoch; a writer takes
 * the epoch with a compare-and-set (full fence) and then reads the slots. Whichever goes second
 * sees the other (Dekker), so a reader either sees no writer and is waited for, or sees the writer
 * and backs off. The reader compares the epoch with the one it read before it claimed the slot, so
 * what it read in between (speculatively, to overlap its first lookup with the compare-and-set)
 * is valid only if no exclusive holder came or went since. A reader that finds its slot taken
 * (another thread hashed to it) or the epoch moved gets -1 and takes the exclusive side instead.
 * Each slot also counts the hits its holders served (plain writes by the slot's holder, read by an
 * exclusive holder after the drain), so the shared side shares no written cache line between
 * threads.
 *
 * <p>Neither side is reentrant: nothing a unit does under its lock calls back into the unit
 * (interrupts are signalled after release), and a re-entry is reported as a bug rather than
 * deadlocking silently.
 */
public final class UnitLock {
    private static final VarHandle EPOCH;
    private static final VarHandle SLOTS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final int SPINS_BEFORE_YIELD = 64;
    /** Reader slots; a power of two. */
    private static final int SLOT_COUNT = 16;
    /** longs per slot: 128 bytes, so two slots never share a cache line (or an adjacent-line prefetch pair). */
    private static final int SLOT_STRIDE = 16;
    /** Within a slot: 1 while a reader holds it. */
    private static final int HELD = 0;
    /** Within a slot: hits counted by its holders. */
    private static final int HITS = 1;
    /**
     * Within a slot: the holder's thread id, or 0, for the re-entry check (a long, not a Thread
     * reference, whose store would pay the GC's write barrier on every hit). Cleared before the
     * slot is released, so a thread never finds its own stale id in a slot another thread holds.
     */
    private static final int READER = 2;

    static {
        try {
            EPOCH = MethodHandles.lookup().findVarHandle(UnitLock.class, "epoch", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * The lock word: odd while an exclusive holder is inside (it waits for readers to leave with
     * it odd); entry (a compare-and-set, so also the fence before the slots are read) and exit
     * each add one.
     */
    @SuppressWarnings("unused") // through EPOCH
    private volatile long epoch;
    /** The holder, for the re-entry check; written and cleared only by the holder. */
    private Thread owner;
    /** The reader slots, one every SLOT_STRIDE longs, with a slot's worth of padding in front. */
    private final long[] slots = new long[(SLOT_COUNT + 1) * SLOT_STRIDE];

    /** Takes the exclusive side: waits for the lock, then for every shared holder to leave. */
    public void lock() {
        long e = (long) EPOCH.getOpaque(this);
        if ((e & 1) != 0 || !EPOCH.compareAndSet(this, e, e + 1)) {
            lockContended();
        }
        owner = Thread.currentThread();
        for (int s = 1; s <= SLOT_COUNT; s++) {
            int spins = 0;
            while ((long) SLOTS.getVolatile(slots, s * SLOT_STRIDE + HELD) != 0) {
                if (++spins < SPINS_BEFORE_YIELD) {
                    Thread.onSpinWait();
                } else if (slots[s * SLOT_STRIDE + READER] == owner.threadId()) {
                    unlock();
                    throw new IllegalStateException("bug: a unit's lock taken by a holder of its shared side");
                } else {
                    Thread.yield();
                }
            }
        }
    }

    private void lockContended() {
        if (owner == Thread.currentThread()) {
            throw new IllegalStateException("bug: a unit's lock re-entered by its holder");
        }
        int spins = 0;
        while (true) {
            long e = (long) EPOCH.getOpaque(this);
            if ((e & 1) == 0 && EPOCH.compareAndSet(this, e, e + 1)) {
                return;
            }
            if (++spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }

    public void unlock() {
        owner = null;
        EPOCH.setRelease(this, (long) EPOCH.getOpaque(this) + 1);
    }

    /** {@return whether the calling thread holds the exclusive side} */
    public boolean heldByCurrentThread() {
        return owner == Thread.currentThread();
    }

    /** {@return the epoch, for {@link #tryReadLock}: odd while an exclusive holder is inside} */
    public long readEpoch() {
        return (long) EPOCH.getAcquire(this);
    }

    /**
     * Tries the shared side; {@return the slot to pass to {@link #readUnlock}, or -1 (take
     * {@link #lock} instead)}. Succeeds only if the epoch is still {@code epoch} (from
     * {@link #readEpoch}) and even, so whatever the caller read since {@link #readEpoch} saw no
     * exclusive holder's change. A shared holder may only read what the exclusive side guards, and
     * must leave before it takes the exclusive side (which would wait for it forever).
     */
    public int tryReadLock(long epoch) {
        int at = ((int) Thread.currentThread().threadId() & (SLOT_COUNT - 1)) * SLOT_STRIDE + SLOT_STRIDE;
        if ((epoch & 1) != 0 || !SLOTS.compareAndSet(slots, at + HELD, 0L, 1L)) {
            return -1;
        }
        if ((long) EPOCH.getVolatile(this) != epoch) {
            SLOTS.setRelease(slots, at + HELD, 0L);
            return -1;
        }
        slots[at + READER] = Thread.currentThread().threadId();
        return at;
    }

    /** Counts one hit in the slot of a shared holder (a plain write: the slot is the holder's alone). */
    public void countReadHit(int slot) {
        slots[slot + HITS]++;
    }

    /** Leaves the shared side. */
    public void readUnlock(int slot) {
        slots[slot + READER] = 0;
        SLOTS.setRelease(slots, slot + HELD, 0L);
    }

    /** {@return the hits counted by shared holders} (call under {@link #lock}, when no reader is inside) */
    public long readHits() {
        long sum = 0;
        for (int s = 1; s <= SLOT_COUNT; s++) {
            sum += slots[s * SLOT_STRIDE + HITS];
        }
        return sum;
    }
}
