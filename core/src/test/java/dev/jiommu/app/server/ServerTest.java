package dev.jiommu.app.server;

import dev.jiommu.abi.IoctlNumbers;
import dev.jiommu.abi.TestCmdStruct;
import dev.jiommu.errno.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.function.BooleanSupplier;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;

/** The server end to end, with this JVM as the client process (its memory is what the server reads). */
class ServerTest {
    private static final long MAP_BYTES = 2 * 4096;
    private static final long APERTURE_START = 1L << 24;
    private static final int MAP_FIXED_IOVA = 1;
    private static final int MAP_WRITEABLE = 2;
    private static final int MAP_READABLE = 4;
    private static final int ACCESS_RW_WRITE = 1;
    private static final long TEST_CMD_UNION = 16;

    @TempDir
    Path dir;
    private IommufdServer server;

    private IommufdServer server() {
        server = IommufdServer.start(dir.resolve("jiommu.sock"), 64L << 20, null);
        return server;
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void socketIsOwnerOnly() throws IOException {
        Path socket = server().socketPath();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(socket))).isEqualTo("rw-------");
    }

    @Test
    void ioctlReadsAndAnswersTheStructInTheClientsMemory() {
        try (ServerClient client = new ServerClient(server().socketPath())) {
            assertThat(client.open()).isPositive();
            int ioas = ioasAlloc(client);
            assertThat(ioas).isPositive();
            assertThat(ioasAlloc(client)).as("a second IOAS").isNotEqualTo(ioas);
        }
    }

    @Test
    void unknownCommandIsEnottyAndBadPointerIsEfault() {
        try (ServerClient client = new ServerClient(server().socketPath())) {
            client.open();
            MemorySegment arg = client.allocate(64);
            arg.set(JAVA_INT, 0, 12);
            assertThat(client.ioctl(IoctlNumbers.io(0xbf), arg)).isEqualTo(-Errno.ENOTTY.number());
            assertThat(client.call(Wire.IOCTL, IoctlNumbers.IOAS_ALLOC, 16, 0)).isEqualTo(-Errno.EFAULT.number());
        }
    }

    @Test
    void ioctlBeforeOpenIsEbadf() {
        try (ServerClient client = new ServerClient(server().socketPath())) {
            assertThat(client.ioctl(IoctlNumbers.IOAS_ALLOC, client.allocate(64))).isEqualTo(-Errno.EBADF.number());
        }
    }

    @Test
    void deviceReadsAndWritesReachTheClientsPinnedMemory() {
        try (ServerClient client = new ServerClient(server().socketPath())) {
            client.open();
            int ioas = ioasAlloc(client);
            MemorySegment cmd = testCmd(client, TestCmdStruct.OP_MOCK_DOMAIN, ioas);
            assertThat(client.ioctl(ServerClient.testCmd(), cmd)).isZero();

            MemorySegment buffer = client.allocate(MAP_BYTES);
            for (int i = 0; i < MAP_BYTES; i++) {
                buffer.set(JAVA_BYTE, i, (byte) i);
            }
            MemorySegment map = client.allocate(40);
            map.set(JAVA_INT, 0, 40);
            map.set(JAVA_INT, 4, MAP_FIXED_IOVA | MAP_WRITEABLE | MAP_READABLE);
            map.set(JAVA_INT, 8, ioas);
            map.set(JAVA_LONG, 16, buffer.address());
            map.set(JAVA_LONG, 24, MAP_BYTES);
            map.set(JAVA_LONG, 32, APERTURE_START);
            assertThat(client.ioctl(IoctlNumbers.IOAS_MAP, map)).isZero();

            MemorySegment create = testCmd(client, TestCmdStruct.OP_CREATE_ACCESS, ioas);
            assertThat(client.ioctl(ServerClient.testCmd(), create)).isZero();
            int accessFd = create.get(JAVA_INT, TEST_CMD_UNION);
            assertThat(accessFd).as("the access fd is the one the client received").isEqualTo(client.installedFd);

            // The CPU writes after the pin; the device must read the new bytes.
            buffer.set(JAVA_BYTE, 4096 + 7, (byte) 0x5a);
            MemorySegment out = client.allocate(16);
            MemorySegment rw = accessRw(client, accessFd, APERTURE_START + 4096, 16, out, 0);
            assertThat(client.ioctl(ServerClient.testCmd(), rw)).isZero();
            assertThat(out.get(JAVA_BYTE, 7)).isEqualTo((byte) 0x5a);
            assertThat(out.get(JAVA_BYTE, 8)).isEqualTo((byte) 8);

            // The device writes; the client must see it.
            MemorySegment in = client.allocate(16);
            in.fill((byte) 0x77);
            rw = accessRw(client, accessFd, APERTURE_START + 100, 16, in, ACCESS_RW_WRITE);
            assertThat(client.ioctl(ServerClient.testCmd(), rw)).isZero();
            assertThat(buffer.get(JAVA_BYTE, 100)).isEqualTo((byte) 0x77);
            assertThat(buffer.get(JAVA_BYTE, 115)).isEqualTo((byte) 0x77);
            assertThat(buffer.get(JAVA_BYTE, 116)).isEqualTo((byte) 116);
        }
    }

    @Test
    void closingTheLastConnectionDestroysTheContextAndReleasesItsFrames() {
        IommufdServer s = server();
        long framesBefore = s.allocatedFrames();
        try (ServerClient client = new ServerClient(s.socketPath())) {
            client.open();
            int ioas = ioasAlloc(client);
            assertThat(client.ioctl(ServerClient.testCmd(), testCmd(client, TestCmdStruct.OP_MOCK_DOMAIN, ioas))).isZero();
            MemorySegment buffer = client.allocate(MAP_BYTES);
            MemorySegment map = client.allocate(40);
            map.set(JAVA_INT, 0, 40);
            map.set(JAVA_INT, 4, MAP_WRITEABLE | MAP_READABLE);
            map.set(JAVA_INT, 8, ioas);
            map.set(JAVA_LONG, 16, buffer.address());
            map.set(JAVA_LONG, 24, MAP_BYTES);
            assertThat(client.ioctl(IoctlNumbers.IOAS_MAP, map)).isZero();
            assertThat(s.contextCount()).isEqualTo(1);
            assertThat(s.allocatedFrames()).isGreaterThan(framesBefore);
        }
        awaitTrue(() -> s.contextCount() == 0, "the context closes");
        assertThat(s.allocatedFrames()).as("frames after close").isEqualTo(framesBefore);
    }

    @Test
    void attachedConnectionSharesTheContextAndKeepsItAlive() {
        IommufdServer s = server();
        try (ServerClient child = new ServerClient(s.socketPath())) {
            int ioas;
            try (ServerClient parent = new ServerClient(s.socketPath())) {
                long token = parent.open();
                ioas = ioasAlloc(parent);
                assertThat(child.attach(token)).isZero();
                assertThat(child.attach(token)).as("attach twice").isEqualTo(-Errno.EINVAL.number());
            }
            assertThat(s.contextCount()).isEqualTo(1);
            MemorySegment destroy = child.allocate(8);
            destroy.set(JAVA_INT, 0, 8);
            destroy.set(JAVA_INT, 4, ioas);
            assertThat(child.ioctl(IoctlNumbers.DESTROY, destroy)).as("the parent's IOAS, through the child").isZero();
        }
        awaitTrue(() -> s.contextCount() == 0, "the context closes with its last connection");
    }

    @Test
    void pidfdTellsTheProcessFromOneThatReusedItsPid() throws Exception {
        try (Posix posix = new Posix()) {
            int self = posix.pidfdOpen((int) ProcessHandle.current().pid());
            assertThat(posix.pidfdAlive(self)).isTrue();
            Process p = new ProcessBuilder("sleep", "30").start();
            int child = posix.pidfdOpen((int) p.pid());
            assertThat(posix.pidfdAlive(child)).isTrue();
            p.destroy();
            p.waitFor();
            assertThat(posix.pidfdAlive(child)).as("after it exited").isFalse();
            posix.close(self);
            posix.close(child);
        }
    }

    @Test
    void aClientThatVanishesMidCallOrSendsGarbageLeavesTheServerServing() {
        IommufdServer s = server();
        try (ServerClient rude = new ServerClient(s.socketPath())) {
            rude.open();
            MemorySegment alloc = rude.allocate(12);
            alloc.set(JAVA_INT, 0, 12);
            assertThat(rude.link.send(Wire.IOCTL, IoctlNumbers.IOAS_ALLOC, alloc.address(), 0, null, -1)).isTrue();
        } // gone before the reply
        try (ServerClient garbage = new ServerClient(s.socketPath())) {
            garbage.open();
            assertThat(garbage.link.send(0x7777, 0, 0, 0, null, -1)).isTrue();
            assertThat(garbage.link.receive()).as("the server hangs up on an unknown op").isFalse();
        }
        awaitTrue(() -> s.contextCount() == 0, "both contexts close");
        try (ServerClient polite = new ServerClient(s.socketPath())) {
            polite.open();
            assertThat(ioasAlloc(polite)).isPositive();
        }
    }

    @Test
    void aClientThatNeverTakesItsNewFdHoldsTheServerOnlyBriefly() {
        IommufdServer s = server();
        try (ServerClient rude = new ServerClient(s.socketPath()); ServerClient polite = new ServerClient(s.socketPath())) {
            rude.open();
            MemorySegment fault = rude.allocate(16);
            fault.set(JAVA_INT, 0, 16);
            // IOMMU_FAULT_QUEUE_ALLOC hands out an fd: the server waits for the client's answer, which never comes.
            assertThat(rude.link.send(Wire.IOCTL, IoctlNumbers.FAULT_QUEUE_ALLOC, fault.address(), 0, null, -1)).isTrue();
            polite.open();
            long start = System.nanoTime();
            assertThat(ioasAlloc(polite)).isPositive();
            assertThat(System.nanoTime() - start).as("the other client waited at most the callback timeout")
                    .isLessThan(20_000_000_000L);
        }
        awaitTrue(() -> s.contextCount() == 0, "both contexts close");
    }

    @Test
    void anOpenFaultQueueFdKeepsItsContextAliveAfterTheIommufdCloses() throws InterruptedException {
        IommufdServer s = server();
        long token;
        int faultFd;
        ServerClient first = new ServerClient(s.socketPath());
        token = first.open();
        MemorySegment fault = first.allocate(16);
        fault.set(JAVA_INT, 0, 16);
        assertThat(first.ioctl(IoctlNumbers.FAULT_QUEUE_ALLOC, fault)).isZero();
        faultFd = first.installedFd;
        first.installedFd = -1; // keep it open past the client's close
        first.close();
        // Something that must not happen cannot be awaited: give the server time to see the hang-up.
        Thread.sleep(300);
        try (ServerClient later = new ServerClient(s.socketPath())) {
            assertThat(later.attach(token)).as("the context lives while its fault fd is open").isZero();
        }
        try (Posix posix = new Posix()) {
            posix.close(faultFd);
        }
        awaitTrue(() -> s.contextCount() == 0, "the context closes with its last fd");
    }

    @Test
    void attachToAnUnknownTokenIsEnoent() {
        try (ServerClient client = new ServerClient(server().socketPath())) {
            assertThat(client.attach(12345)).isEqualTo(-Errno.ENOENT.number());
        }
    }

    private static int ioasAlloc(ServerClient client) {
        MemorySegment alloc = client.allocate(12);
        alloc.set(JAVA_INT, 0, 12);
        assertThat(client.ioctl(IoctlNumbers.IOAS_ALLOC, alloc)).isZero();
        return alloc.get(JAVA_INT, 8);
    }

    private static MemorySegment testCmd(ServerClient client, int op, int id) {
        MemorySegment cmd = client.allocate(TestCmdStruct.SIZE_BYTES);
        cmd.set(JAVA_INT, 0, (int) TestCmdStruct.SIZE_BYTES);
        cmd.set(JAVA_INT, 4, op);
        cmd.set(JAVA_INT, 8, id);
        return cmd;
    }

    private static MemorySegment accessRw(ServerClient client, int accessFd, long iova, long length, MemorySegment user, int flags) {
        MemorySegment cmd = testCmd(client, TestCmdStruct.OP_ACCESS_RW, accessFd);
        cmd.set(JAVA_LONG, TEST_CMD_UNION, iova);
        cmd.set(JAVA_LONG, TEST_CMD_UNION + 8, length);
        cmd.set(JAVA_LONG, TEST_CMD_UNION + 16, user.address());
        cmd.set(JAVA_INT, TEST_CMD_UNION + 24, flags);
        return cmd;
    }

    /** The server closes contexts on its connection threads: wait for it, boundedly. */
    private static void awaitTrue(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("waiting until %s", what).isLessThan(deadline);
            Thread.onSpinWait();
            Thread.yield();
        }
    }
}
