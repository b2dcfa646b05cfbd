package dev.jiommu.iommufd;

import java.time.Duration;

/**
 * A file a context hands out beside itself (a fault queue, a vEVENTQ), with the kernel's read,
 * write and poll rules for that kind. The file holds a reference on its object (DESTROY is EBUSY
 * while it is open); {@link #close()} drops it. A server maps each to a real fd.
 */
public interface IommufdFile extends AutoCloseable {
    /** poll bits, as in {@code <poll.h>}. */
    int POLLIN = 0x1;
    int POLLOUT = 0x4;
    int POLLRDNORM = 0x40;

    /** Reads without blocking; {@return bytes read, 0 when nothing is pending (where the kernel says so)} */
    int read(byte[] buffer);

    /** Reads, waiting up to {@code timeout} for something to read; {@return bytes read, 0 on timeout} */
    int read(byte[] buffer, Duration timeout) throws InterruptedException;

    /** Writes (fault responses); {@return bytes consumed} EINVAL where the kind takes no writes */
    int write(byte[] buffer);

    /** {@return the ready bits: {@link #POLLIN}|{@link #POLLRDNORM} when readable, {@link #POLLOUT} when writable} */
    int poll();

    /**
     * Waits up to {@code timeout} until a read would find something (or the file is closed), without
     * reading; {@return whether a read would find something} A server uses it to make its client's
     * fd readable exactly when the file is.
     */
    default boolean awaitReadable(Duration timeout) throws InterruptedException {
        return (poll() & POLLIN) != 0;
    }

    @Override
    void close();
}
