package dev.jiommu.app.server;

import dev.jiommu.abi.IoctlNumbers;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A client of the server written in Java, speaking the shim's protocol from this JVM: the server
 * reads and writes this process's memory as it would a C client's. Files the server installs are
 * taken as the shim takes them (the fd that rides on INSTALL, answered with its number).
 */
final class ServerClient implements AutoCloseable {
    final Posix posix = new Posix();
    final Link link;
    final Arena arena = Arena.ofShared();
    /** The most recent fd the server installed here. */
    int installedFd = -1;

    ServerClient(Path socket) {
        int s = posix.connectUnix(socket.toString());
        assertThat(s).as("connect to %s", socket).isGreaterThanOrEqualTo(0);
        link = new Link(s, posix);
    }

    /** {@return the context token, or −errno} */
    long open() {
        return call(Wire.OPEN, 2, 0, 0);
    }

    long attach(long token) {
        return call(Wire.ATTACH, 0, token, 0);
    }

    /** {@return what ioctl(fd, cmd, arg) returns: ≥ 0 or −errno} */
    long ioctl(int cmd, MemorySegment arg) {
        return call(Wire.IOCTL, cmd, arg.address(), 0);
    }

    long call(int op, int cmd, long arg, long arg2) {
        assertThat(link.send(op, cmd, arg, arg2, null, -1)).isTrue();
        while (true) {
            assertThat(link.receive()).as("reply").isTrue();
            switch (Wire.op(link.header())) {
                case Wire.REPLY -> {
                    return Wire.arg(link.header());
                }
                case Wire.INSTALL -> {
                    installedFd = link.receivedFd();
                    link.send(Wire.INSTALLED, 0, installedFd, 0, null, -1);
                }
                case Wire.CLOSEFD -> {
                    posix.close((int) Wire.arg(link.header()));
                    link.send(Wire.CLOSED, 0, 0, 0, null, -1);
                }
                default -> throw new AssertionError("unexpected op " + Wire.op(link.header()));
            }
        }
    }

    /** {@return zeroed native memory of {@code bytes}, page aligned} */
    MemorySegment allocate(long bytes) {
        return arena.allocate(bytes, 4096);
    }

    static int testCmd() {
        return IoctlNumbers.TEST_CMD;
    }

    @Override
    public void close() {
        link.close();
        if (installedFd >= 0) {
            posix.close(installedFd);
        }
        posix.close();
        arena.close();
    }
}
