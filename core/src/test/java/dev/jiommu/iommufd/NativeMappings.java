package dev.jiommu.iommufd;

import dev.jiommu.abi.LinuxSyscalls;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Real anonymous mappings at the fixed addresses the ported cases use, for running them on the
 * kernel: mmap(MAP_FIXED_NOREPLACE), so a collision with something the JVM mapped fails loudly
 * instead of clobbering it.
 */
final class NativeMappings implements AutoCloseable {
    /** start → length of each mapping. */
    private final Map<Long, Long> mapped = new TreeMap<>();

    void map(long va, long lengthBytes, boolean hugePages, boolean writable) {
        int prot = LinuxSyscalls.PROT_READ | (writable ? LinuxSyscalls.PROT_WRITE : 0);
        int flags = LinuxSyscalls.MAP_PRIVATE | LinuxSyscalls.MAP_ANONYMOUS | LinuxSyscalls.MAP_FIXED_NOREPLACE
                | (hugePages ? LinuxSyscalls.MAP_HUGETLB : 0);
        long at = LinuxSyscalls.mmap(va, lengthBytes, prot, flags, -1, 0);
        assertThat(at).as("mmap(0x%x, 0x%x, huge %s)", va, lengthBytes, hugePages).isEqualTo(va);
        mapped.put(va, lengthBytes);
    }

    void unmap(long va) {
        Long length = mapped.remove(va);
        assertThat(length).as("a mapping at 0x%x", va).isNotNull();
        assertThat(LinuxSyscalls.munmap(va, length)).as("munmap(0x%x)", va).isZero();
    }

    byte[] read(long va, int length) {
        return MemorySegment.ofAddress(va).reinterpret(length).toArray(ValueLayout.JAVA_BYTE);
    }

    void write(long va, byte[] bytes) {
        MemorySegment.copy(bytes, 0, MemorySegment.ofAddress(va).reinterpret(bytes.length), ValueLayout.JAVA_BYTE, 0, bytes.length);
    }

    @Override
    public void close() {
        for (long va : Map.copyOf(mapped).keySet()) {
            unmap(va);
        }
    }
}
