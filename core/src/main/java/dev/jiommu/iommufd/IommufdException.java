package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;

import java.util.Locale;

/**
 * A failed iommufd call: the errno the Linux kernel returns for the same request, and a message
 * naming the values involved. A call that throws it has changed nothing (except where the kernel
 * itself reports partial progress, which the method's documentation says).
 */
public final class IommufdException extends ErrnoException {
    private int progress = -1;
    private long progressBytes = -1;

    public IommufdException(Errno errno, String message) {
        super(errno, message);
    }

    /** {@return how far the call got before failing (HWPT_INVALIDATE's entries handled), or -1} */
    public int progress() {
        return progress;
    }

    /** {@return this, carrying {@code handled} as its progress} (for a backend that reads it from the ABI) */
    public IommufdException withProgress(int handled) {
        this.progress = handled;
        return this;
    }

    /**
     * {@return the bytes an unmap had already removed when it failed (VFIO UNMAP_DMA writes them
     * back even on failure), or -1 when it failed before unmapping anything was tried}
     */
    public long progressBytes() {
        return progressBytes;
    }

    /** {@return this, carrying {@code bytes} as its byte progress} (for a backend that reads it from the ABI) */
    public IommufdException withProgressBytes(long bytes) {
        this.progressBytes = bytes;
        return this;
    }

    /** {@return a new exception for {@code errno}, its message formatted from {@code format}} */
    public static IommufdException of(Errno errno, String format, Object... args) {
        return new IommufdException(errno, String.format(Locale.ROOT, format, args));
    }

    /** {@return {@code e} as an IommufdException (a lower layer's errno, same message)} */
    static IommufdException from(ErrnoException e) {
        if (e instanceof IommufdException ie) {
            return ie;
        }
        String message = e.getMessage();
        String prefix = e.errno() + ": ";
        IommufdException wrapped = new IommufdException(e.errno(), message.startsWith(prefix) ? message.substring(prefix.length()) : message);
        wrapped.initCause(e);
        return wrapped;
    }
}
