package dev.jiommu.app.server;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.assertj.core.api.Assertions.assertThat;

/** What the kernel says backs a VA, asked the two ways ProcMaps knows, on this very process. */
class ServerProcMapsTest {
    private final int self = (int) ProcessHandle.current().pid();

    @Test
    void privateAnonymousMemoryIsFoundNotSharedWithSmallPages() {
        try (Arena arena = Arena.ofConfined(); Posix posix = new Posix(); ProcMaps maps = new ProcMaps(posix)) {
            MemorySegment big = arena.allocate(8 << 20, 4096);
            long va = big.address() + (4 << 20);
            ProcMaps.Mapping m = maps.find(self, va);
            assertThat(m).isNotNull();
            assertThat(Long.compareUnsigned(m.start(), va)).isLessThanOrEqualTo(0);
            assertThat(Long.compareUnsigned(va, m.end())).isNegative();
            assertThat(m.shared()).isFalse();
            assertThat(m.hugetlb()).isFalse();
            assertThat(ProcMaps.parse(self, va)).as("the text says the same").isEqualTo(m);
        }
    }

    @Test
    void sharedFileMappingIsSharedWithItsInodeAndOffset() throws IOException {
        Path file = Files.createTempFile("procmaps", ".bin");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena arena = Arena.ofConfined(); Posix posix = new Posix(); ProcMaps maps = new ProcMaps(posix)) {
            ch.write(java.nio.ByteBuffer.allocate(3 * 4096));
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_WRITE, 4096, 2 * 4096, arena);
            ProcMaps.Mapping m = maps.find(self, mapped.address() + 4096);
            assertThat(m).isNotNull();
            assertThat(m.shared()).isTrue();
            assertThat(m.offset() + (mapped.address() + 4096 - m.start())).as("file offset of the VA").isEqualTo(2 * 4096);
            assertThat(m.inode()).isEqualTo(Files.getAttribute(file, "unix:ino"));
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void nothingMappedIsNull() {
        try (Posix posix = new Posix(); ProcMaps maps = new ProcMaps(posix)) {
            assertThat(maps.find(self, 0x1000)).isNull();
        }
    }
}
