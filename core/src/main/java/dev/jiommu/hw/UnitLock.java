package dev.jiommu.hw;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The lock of one emulated IOMMU unit: test-and-test-and-set, spinning briefly and then yielding,
 * never parking. The hit path pays one compare-and-set and one release store (no full fence on
 * unlock, unlike {@code ReentrantLock}); waiters never sleep in the kernel, which keeps two devices
 * behind one unit from collapsing into park/unpark hand-offs.
 *
 * <p>Not reentrant: nothing a unit does under its lock calls back into the unit (interrupts are
 * signalled after release), and a re-entry is reported as a bug rather than deadlocking silently.
 */
public final class UnitLock {
    private static final VarHandle STATE;
    private static final int SPINS_BEFORE_YIELD = 64;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(UnitLock.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // through STATE
    private volatile int state;
    /** The holder, for the re-entry check; written and cleared only by the holder. */
    private Thread owner;

    public void lock() {
        if (!STATE.compareAndSet(this, 0, 1)) {
            lockContended();
        }
        owner = Thread.currentThread();
    }

    private void lockContended() {
        if (owner == Thread.currentThread()) {
            throw new IllegalStateException("bug: a unit's lock re-entered by its holder");
        }
        int spins = 0;
        while (true) {
            if ((int) STATE.getOpaque(this) == 0 && STATE.compareAndSet(this, 0, 1)) {
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
        STATE.setRelease(this, 0);
    }

    /** {@return whether the calling thread holds the lock} */
    public boolean heldByCurrentThread() {
        return owner == Thread.currentThread();
    }
}
