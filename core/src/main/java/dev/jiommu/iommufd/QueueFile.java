package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.time.Duration;

/**
 * The file side of a queue object (fault queue, vEVENTQ): reads and writes run under the queue's
 * own monitor, never the context lock, so a reader may block while devices keep reporting. The
 * file holds one reference on its object from {@link #open()} until it is closed (or its context is).
 */
abstract class QueueFile implements IommufdFile {
    private final IommufdContext context;
    private final IommufdObject owner;
    /** The queue's monitor: guards the queue and {@link #closed}. */
    private final Object monitor;
    private boolean closed;

    QueueFile(IommufdContext context, IommufdObject owner, Object monitor) {
        this.context = context;
        this.owner = owner;
        this.monitor = monitor;
    }

    /** Takes the file's reference on its object and registers it with the context; {@return this} */
    final QueueFile open() {
        owner.get();
        context.openFile(this, this::release);
        return this;
    }

    /** {@return whether a read would find something} Called with the monitor held. */
    abstract boolean readableLocked();

    /** Reads what fits; called with the monitor held and the file open. */
    abstract int readLocked(byte[] buffer);

    /** Writes; called with the monitor held and the file open. By default the kind takes no writes. */
    int writeLocked(byte[] buffer) {
        throw IommufdException.of(Errno.EINVAL, "%s takes no writes", owner);
    }

    /** {@return the poll bits besides readability} (a fault queue is always writable) */
    int otherPollBits() {
        return 0;
    }

    @Override
    public final int read(byte[] buffer) {
        synchronized (monitor) {
            checkOpen();
            return readLocked(buffer);
        }
    }

    @Override
    public final int read(byte[] buffer, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (monitor) {
            while (!readableLocked() && !closed) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return 0;
                }
                monitor.wait(Math.max(1, left / 1_000_000));
            }
            checkOpen();
            return readLocked(buffer);
        }
    }

    @Override
    public final boolean awaitReadable(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (monitor) {
            while (!readableLocked() && !closed) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                monitor.wait(Math.max(1, left / 1_000_000));
            }
            return !closed && readableLocked();
        }
    }

    @Override
    public final int write(byte[] buffer) {
        synchronized (monitor) {
            checkOpen();
            return writeLocked(buffer);
        }
    }

    @Override
    public final int poll() {
        synchronized (monitor) {
            return otherPollBits() | (readableLocked() ? POLLIN | POLLRDNORM : 0);
        }
    }

    @Override
    public final void close() {
        context.closeFile(this, this::release);
    }

    /** Drops the file's reference, once: from {@link #close()} or from the context's close. */
    private void release() {
        synchronized (monitor) {
            closed = true;
            monitor.notifyAll();
        }
        owner.put();
    }

    private void checkOpen() {
        if (closed) {
            throw IommufdException.of(Errno.EBADF, "the file of %s is closed", owner);
        }
    }
}
