package dev.jiommu.errno;

/**
 * The Linux errno values jiommu reports, with their x86-64/generic wire numbers.
 *
 * <p>The set is open: a number this enum does not name maps to {@link #UNKNOWN}, and
 * {@link ErrnoException#rawErrno()} keeps the number itself.
 */
public enum Errno {
    EPERM(1),
    ENOENT(2),
    ESRCH(3),
    EINTR(4),
    EIO(5),
    ENXIO(6),
    E2BIG(7),
    EBADF(9),
    EAGAIN(11),
    ENOMEM(12),
    EACCES(13),
    EFAULT(14),
    EBUSY(16),
    EEXIST(17),
    ENODEV(19),
    EINVAL(22),
    EMFILE(24),
    ENOTTY(25),
    ENOSPC(28),
    ESPIPE(29),
    EDOM(33),
    ERANGE(34),
    EDEADLK(35),
    ENOSYS(38),
    EBADE(52),
    EOVERFLOW(75),
    /** "File descriptor in bad state": what the selftest's access ops return for an fd that is no access. */
    EBADFD(77),
    EMSGSIZE(90),
    EOPNOTSUPP(95),
    EADDRINUSE(98),
    ETIMEDOUT(110),
    /** A number this enum does not name; the exception carrying it keeps the raw value. */
    UNKNOWN(-1);

    private static final Errno[] BY_NUMBER = byNumber();

    private final int number;

    Errno(int number) {
        this.number = number;
    }

    /** {@return the positive errno number, as the kernel returns it negated} */
    public int number() {
        return number;
    }

    /** {@return the constant for {@code number}, or {@link #UNKNOWN}} */
    public static Errno of(int number) {
        if (number > 0 && number < BY_NUMBER.length && BY_NUMBER[number] != null) {
            return BY_NUMBER[number];
        }
        return UNKNOWN;
    }

    private static Errno[] byNumber() {
        int max = 0;
        for (Errno e : values()) {
            max = Math.max(max, e.number);
        }
        Errno[] table = new Errno[max + 1];
        for (Errno e : values()) {
            if (e == UNKNOWN) {
                continue;
            }
            if (table[e.number] != null) {
                throw new ExceptionInInitializerError("duplicate errno " + e.number + ": " + table[e.number] + ", " + e);
            }
            table[e.number] = e;
        }
        return table;
    }
}
