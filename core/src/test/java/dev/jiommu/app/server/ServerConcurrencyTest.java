package dev.jiommu.app.server;

import dev.jiommu.abi.IoctlNumbers;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;

/** Several clients at once: each sees only its own context, and every context closes with its client. */
class ServerConcurrencyTest {
    private static final int CLIENTS = 6;
    private static final int ROUNDS = 300;

    @TempDir
    Path dir;
    private IommufdServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void clientsCallingAtOnceSeeOnlyTheirOwnObjects() throws Exception {
        server = IommufdServer.start(dir.resolve("s"), 256L << 20, null);
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        List<Future<String>> results = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            results.add(pool.submit(this::oneClient));
        }
        for (Future<String> r : results) {
            assertThat(r.get(60, TimeUnit.SECONDS)).isEqualTo("ok");
        }
        pool.shutdown();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (server.contextCount() != 0) {
            assertThat(System.nanoTime()).as("every context closes").isLessThan(deadline);
            Thread.onSpinWait();
        }
    }

    /** Allocates IOASes, maps and unmaps, and checks that IDs it never made are unknown to it. */
    private String oneClient() {
        try (ServerClient client = new ServerClient(server.socketPath())) {
            assertThat(client.open()).isPositive();
            MemorySegment buffer = client.allocate(4096);
            MemorySegment alloc = client.allocate(12);
            MemorySegment map = client.allocate(40);
            MemorySegment unmap = client.allocate(24);
            List<Integer> mine = new ArrayList<>();
            for (int round = 0; round < ROUNDS; round++) {
                alloc.set(JAVA_INT, 0, 12);
                assertThat(client.ioctl(IoctlNumbers.IOAS_ALLOC, alloc)).isZero();
                int ioas = alloc.get(JAVA_INT, 8);
                assertThat(mine).doesNotContain(ioas);
                mine.add(ioas);
                map.set(JAVA_INT, 0, 40);
                map.set(JAVA_INT, 4, 1 | 2 | 4);
                map.set(JAVA_INT, 8, ioas);
                map.set(JAVA_LONG, 16, buffer.address());
                map.set(JAVA_LONG, 24, 4096);
                map.set(JAVA_LONG, 32, 1L << 24);
                assertThat(client.ioctl(IoctlNumbers.IOAS_MAP, map)).isZero();
                unmap.set(JAVA_INT, 0, 24);
                unmap.set(JAVA_INT, 4, ioas);
                unmap.set(JAVA_LONG, 8, 1L << 24);
                unmap.set(JAVA_LONG, 16, 4096);
                assertThat(client.ioctl(IoctlNumbers.IOAS_UNMAP, unmap)).isZero();
            }
            // IDs are per context, handed out in order: another client's objects would leave gaps.
            for (int i = 1; i < mine.size(); i++) {
                assertThat(mine.get(i)).as("id %d", i).isEqualTo(mine.get(i - 1) + 1);
            }
            return "ok";
        }
    }
}
