package dev.jiommu.errno;

import java.util.Locale;

/**
 * A failure the caller caused, carrying the errno the Linux kernel returns for the same request.
 *
 * <p>Every layer throws this (or a subclass) for bad input; our own bugs and broken driver
 * contracts are {@link IllegalStateException} or {@link AssertionError} instead, never errno.
 * A call that throws it has changed nothing.
 */
public class ErrnoException extends RuntimeException {
    private final Errno errno;
    private final int rawErrno;

    public ErrnoException(Errno errno, String message) {
        this(errno, errno.number(), message);
    }

    /** For a raw number that may not be in {@link Errno}, as the kernel backend receives them. */
    public ErrnoException(Errno errno, int rawErrno, String message) {
        super(errno + ": " + message);
        this.errno = errno;
        this.rawErrno = rawErrno;
    }

    /** {@return a new exception for {@code errno}, its message formatted from {@code format}} */
    public static ErrnoException of(Errno errno, String format, Object... args) {
        return new ErrnoException(errno, String.format(Locale.ROOT, format, args));
    }

    public Errno errno() {
        return errno;
    }

    /** {@return the errno number itself, meaningful even when {@link #errno()} is UNKNOWN} */
    public int rawErrno() {
        return rawErrno;
    }
}
