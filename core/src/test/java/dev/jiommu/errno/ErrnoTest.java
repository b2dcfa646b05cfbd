package dev.jiommu.errno;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class ErrnoTest {
    @Test
    void numbersMatchLinux() {
        assertThat(Errno.ENOENT.number()).isEqualTo(2);
        assertThat(Errno.EEXIST.number()).isEqualTo(17);
        assertThat(Errno.EINVAL.number()).isEqualTo(22);
        assertThat(Errno.ENOTTY.number()).isEqualTo(25);
        assertThat(Errno.EOVERFLOW.number()).isEqualTo(75);
        assertThat(Errno.EOPNOTSUPP.number()).isEqualTo(95);
        assertThat(Errno.EADDRINUSE.number()).isEqualTo(98);
    }

    @Test
    void unknownNumbersStayRepresentable() {
        assertThat(Errno.of(17)).isEqualTo(Errno.EEXIST);
        assertThat(Errno.of(4095)).isEqualTo(Errno.UNKNOWN);
        assertThat(Errno.of(0)).isEqualTo(Errno.UNKNOWN);
        ErrnoException e = new ErrnoException(Errno.UNKNOWN, 200, "odd");
        assertThat(e.rawErrno()).isEqualTo(200);
        assertThat(ErrnoException.of(Errno.EBUSY, "x=%d", 3).getMessage()).isEqualTo("EBUSY: x=3");
    }
}
