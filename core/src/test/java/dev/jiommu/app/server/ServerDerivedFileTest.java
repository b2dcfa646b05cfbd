package dev.jiommu.app.server;

import dev.jiommu.errno.Errno;
import dev.jiommu.errno.ErrnoException;
import dev.jiommu.iommufd.IommufdFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;

import static org.assertj.core.api.Assertions.assertThat;

/** A derived file as the client sees it: readable (natively, by poll) exactly when the file is, read through the server. */
class ServerDerivedFileTest {
    /** A queue file of 8-byte events; reads take whole events only (EINVAL below one). */
    private static final class Events implements IommufdFile {
        private final ArrayDeque<byte[]> queue = new ArrayDeque<>();
        boolean closed;
        /** Whether the file was closed under its fd (its context went): nothing will be readable. */
        boolean dead;
        int waits;

        synchronized void push(byte[] event) {
            queue.add(event);
            notifyAll();
        }

        @Override
        public synchronized int read(byte[] buffer) {
            if (buffer.length < 8) {
                throw ErrnoException.of(Errno.EINVAL, "read of %d bytes", buffer.length);
            }
            int n = 0;
            while (!queue.isEmpty() && n + 8 <= buffer.length) {
                System.arraycopy(queue.poll(), 0, buffer, n, 8);
                n += 8;
            }
            return n;
        }

        @Override
        public int read(byte[] buffer, Duration timeout) {
            return read(buffer);
        }

        @Override
        public int write(byte[] buffer) {
            throw ErrnoException.of(Errno.EINVAL, "no writes");
        }

        @Override
        public synchronized int poll() {
            return queue.isEmpty() ? 0 : POLLIN | POLLRDNORM;
        }

        @Override
        public synchronized boolean awaitReadable(Duration timeout) throws InterruptedException {
            waits++;
            if (dead) {
                return false;
            }
            if (queue.isEmpty()) {
                wait(timeout.toMillis());
            }
            return !queue.isEmpty();
        }

        @Override
        public synchronized void close() {
            closed = true;
        }
    }

    @TempDir
    Path dir;
    private IommufdServer server;
    private final Posix posix = new Posix();
    private final Events events = new Events();
    private int client = -1;

    @AfterEach
    void stop() {
        if (client >= 0) {
            posix.close(client);
        }
        if (server != null) {
            server.close();
        }
    }

    private Link open() {
        server = IommufdServer.start(dir.resolve("s"), 64L << 20, null);
        int[] pair = posix.socketPair();
        DerivedFile file = new DerivedFile(server, null, events, pair[0], 1);
        file.start();
        client = pair[1];
        return new Link(client, posix);
    }

    @Test
    void clientEndIsReadableExactlyWhileTheFileIs() {
        Link link = open();
        assertThat(posix.poll(client, Posix.POLLIN, 50)).as("empty").isZero();
        events.push(new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        assertThat(posix.poll(client, Posix.POLLIN, 5000) & Posix.POLLIN).as("an event arrived").isNotZero();

        byte[] got = read(link, 64);
        assertThat(got).containsExactly(1, 2, 3, 4, 5, 6, 7, 8);
        assertThat(posix.poll(client, Posix.POLLIN, 50)).as("drained").isZero();
    }

    @Test
    void readRulesAreTheFilesAndErrorsArriveAsErrno() {
        Link link = open();
        events.push(new byte[8]);
        events.push(new byte[8]);
        assertThat(link.send(Wire.READ, 0, 4, 0, null, -1)).isTrue();
        assertThat(reply(link)).isEqualTo(-Errno.EINVAL.number());
        assertThat(read(link, 8)).hasSize(8);
        assertThat(posix.poll(client, Posix.POLLIN, 5000) & Posix.POLLIN).as("one event left").isNotZero();
        assertThat(read(link, 8)).hasSize(8);
    }

    @Test
    void aFileClosedUnderItsFdIsNotWatchedInABusyLoop() throws InterruptedException {
        open();
        synchronized (events) {
            events.dead = true;
            events.waits = 0;
            events.notifyAll();
        }
        // Real time is the point here: a watcher that spins calls awaitReadable thousands of times a second.
        Thread.sleep(600);
        synchronized (events) {
            assertThat(events.waits).as("awaitReadable calls in 600 ms").isLessThan(20);
        }
    }

    @Test
    void closingTheClientsLastFdClosesTheFile() {
        open();
        posix.close(client);
        client = -1;
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!events.closed) {
            assertThat(System.nanoTime()).as("the file closes").isLessThan(deadline);
            Thread.onSpinWait();
        }
    }

    private byte[] read(Link link, int count) {
        assertThat(link.send(Wire.READ, 0, count, 0, null, -1)).isTrue();
        long n = reply(link);
        assertThat(n).isNotNegative();
        byte[] bytes = link.payload((int) n);
        assertThat(bytes).isNotNull();
        return bytes;
    }

    /** Drops the readiness markers in front of a reply, as the shim does. {@return the reply's result} */
    private long reply(Link link) {
        MemorySegment one = Arena.ofAuto().allocate(1);
        while (true) {
            assertThat(posix.poll(client, Posix.POLLIN, 5000) & Posix.POLLIN).isNotZero();
            // peek by receiving a whole header when the first byte is not a marker
            assertThat(posix.receive(client, one, 1)).isGreaterThanOrEqualTo(-1);
            if (one.get(ValueLayout.JAVA_BYTE, 0) != DerivedFile.MARKER) {
                break;
            }
        }
        MemorySegment rest = Arena.ofAuto().allocate(Wire.HEADER_BYTES);
        rest.set(ValueLayout.JAVA_BYTE, 0, one.get(ValueLayout.JAVA_BYTE, 0));
        assertThat(posix.receive(client, rest.asSlice(1), Wire.HEADER_BYTES - 1)).isGreaterThanOrEqualTo(-1);
        assertThat(Wire.op(rest)).isEqualTo(Wire.REPLY);
        return Wire.arg(rest);
    }
}
