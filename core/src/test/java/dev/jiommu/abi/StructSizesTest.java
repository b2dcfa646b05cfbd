package dev.jiommu.abi;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every flyweight's size and first-version size against the command table of iommufd-uapi.md §1.3
 * (the VFIO ones against §7 and linux/vfio.h), and a few field offsets of each against §2, §7, §8.1:
 * through the layout, and through an accessor reading what was put at the spec's offset.
 */
class StructSizesTest {
    record Row(String struct, StructLayout layout, long sizeBytes, long minSizeBytes, long expectedSize, long expectedMin) {
        @Override
        public String toString() {
            return struct;
        }
    }

    static Stream<Row> table() {
        return Stream.of(
                new Row("iommu_destroy", DestroyStruct.LAYOUT, DestroyStruct.LAYOUT.byteSize(), DestroyStruct.MIN_SIZE_BYTES, 8, 8),
                new Row("iommu_ioas_alloc", IoasAllocStruct.LAYOUT, IoasAllocStruct.LAYOUT.byteSize(), IoasAllocStruct.MIN_SIZE_BYTES, 12, 12),
                new Row("iommu_ioas_allow_iovas", IoasAllowIovasStruct.LAYOUT, IoasAllowIovasStruct.SIZE_BYTES, IoasAllowIovasStruct.MIN_SIZE_BYTES, 24, 24),
                new Row("iommu_ioas_copy", IoasCopyStruct.LAYOUT, IoasCopyStruct.SIZE_BYTES, IoasCopyStruct.MIN_SIZE_BYTES, 40, 40),
                new Row("iommu_ioas_iova_ranges", IoasIovaRangesStruct.LAYOUT, IoasIovaRangesStruct.LAYOUT.byteSize(),
                        IoasIovaRangesStruct.MIN_SIZE_BYTES, 32, 32),
                new Row("iommu_ioas_map", IoasMapStruct.LAYOUT, IoasMapStruct.SIZE_BYTES, IoasMapStruct.MIN_SIZE_BYTES, 40, 40),
                new Row("iommu_ioas_unmap", IoasUnmapStruct.LAYOUT, IoasUnmapStruct.LAYOUT.byteSize(), IoasUnmapStruct.MIN_SIZE_BYTES, 24, 24),
                new Row("iommu_option", OptionStruct.LAYOUT, OptionStruct.SIZE_BYTES, OptionStruct.MIN_SIZE_BYTES, 24, 24),
                new Row("iommu_vfio_ioas", VfioIoasStruct.LAYOUT, VfioIoasStruct.SIZE_BYTES, VfioIoasStruct.MIN_SIZE_BYTES, 12, 12),
                new Row("iommu_hwpt_alloc", HwptAllocStruct.LAYOUT, HwptAllocStruct.SIZE_BYTES, HwptAllocStruct.MIN_SIZE_BYTES, 48, 24),
                new Row("iommu_hw_info", HwInfoStruct.LAYOUT, HwInfoStruct.SIZE_BYTES, HwInfoStruct.MIN_SIZE_BYTES, 40, 32),
                new Row("iommu_hwpt_set_dirty_tracking", HwptSetDirtyTrackingStruct.LAYOUT, HwptSetDirtyTrackingStruct.SIZE_BYTES,
                        HwptSetDirtyTrackingStruct.MIN_SIZE_BYTES, 16, 16),
                new Row("iommu_hwpt_get_dirty_bitmap", HwptGetDirtyBitmapStruct.LAYOUT, HwptGetDirtyBitmapStruct.SIZE_BYTES,
                        HwptGetDirtyBitmapStruct.MIN_SIZE_BYTES, 48, 48),
                new Row("iommu_hwpt_invalidate", HwptInvalidateStruct.LAYOUT, HwptInvalidateStruct.SIZE_BYTES, HwptInvalidateStruct.MIN_SIZE_BYTES, 32, 32),
                new Row("iommu_fault_alloc", FaultAllocStruct.LAYOUT, FaultAllocStruct.SIZE_BYTES, FaultAllocStruct.MIN_SIZE_BYTES, 16, 16),
                new Row("iommu_ioas_map_file", IoasMapFileStruct.LAYOUT, IoasMapFileStruct.SIZE_BYTES, IoasMapFileStruct.MIN_SIZE_BYTES, 40, 40),
                new Row("iommu_viommu_alloc", ViommuAllocStruct.LAYOUT, ViommuAllocStruct.SIZE_BYTES, ViommuAllocStruct.MIN_SIZE_BYTES, 40, 24),
                new Row("iommu_vdevice_alloc", VdeviceAllocStruct.LAYOUT, VdeviceAllocStruct.SIZE_BYTES, VdeviceAllocStruct.MIN_SIZE_BYTES, 24, 24),
                new Row("iommu_ioas_change_process", IoasChangeProcessStruct.LAYOUT, IoasChangeProcessStruct.SIZE_BYTES,
                        IoasChangeProcessStruct.MIN_SIZE_BYTES, 8, 8),
                new Row("iommu_veventq_alloc", VeventqAllocStruct.LAYOUT, VeventqAllocStruct.SIZE_BYTES, VeventqAllocStruct.MIN_SIZE_BYTES, 32, 28),
                new Row("iommu_hw_queue_alloc", HwQueueAllocStruct.LAYOUT, HwQueueAllocStruct.SIZE_BYTES, HwQueueAllocStruct.MIN_SIZE_BYTES, 40, 40),
                new Row("iommu_ioas_noiommu_get_pa", IoasNoIommuGetPaStruct.LAYOUT, IoasNoIommuGetPaStruct.LAYOUT.byteSize(),
                        IoasNoIommuGetPaStruct.MIN_SIZE_BYTES, 40, 40),
                new Row("iommu_test_cmd", TestCmdStruct.LAYOUT, TestCmdStruct.SIZE_BYTES, TestCmdStruct.MIN_SIZE_BYTES, 72, 68),
                new Row("vfio_iommu_type1_info", VfioIommuType1InfoStruct.LAYOUT, VfioIommuType1InfoStruct.SIZE_BYTES,
                        VfioIommuType1InfoStruct.MIN_SIZE_BYTES, 24, 16),
                new Row("vfio_iommu_type1_dma_map", VfioIommuType1DmaMapStruct.LAYOUT, VfioIommuType1DmaMapStruct.SIZE_BYTES,
                        VfioIommuType1DmaMapStruct.MIN_SIZE_BYTES, 32, 32),
                new Row("vfio_iommu_type1_dma_unmap", VfioIommuType1DmaUnmapStruct.LAYOUT, VfioIommuType1DmaUnmapStruct.SIZE_BYTES,
                        VfioIommuType1DmaUnmapStruct.MIN_SIZE_BYTES, 24, 24),
                new Row("vfio_iommu_type1_info_dma_avail", VfioIommuType1InfoDmaAvailStruct.LAYOUT, VfioIommuType1InfoDmaAvailStruct.SIZE_BYTES,
                        VfioIommuType1InfoDmaAvailStruct.MIN_SIZE_BYTES, 12, 12),
                new Row("vfio_iommu_type1_info_cap_iova_range", VfioIommuType1InfoCapIovaRangeStruct.LAYOUT,
                        VfioIommuType1InfoCapIovaRangeStruct.SIZE_BYTES, VfioIommuType1InfoCapIovaRangeStruct.MIN_SIZE_BYTES, 16, 16));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void sizeAndMinimumSizeMatchTheSpec(Row row) {
        assertThat(row.sizeBytes()).as("sizeof").isEqualTo(row.expectedSize());
        assertThat(row.layout().byteSize()).isEqualTo(row.expectedSize());
        assertThat(row.minSizeBytes()).as("offsetofend of the first version's last field").isEqualTo(row.expectedMin());
    }

    @Test
    void theTableRowsUseTheStructSizes() {
        for (IoctlOp op : IoctlTable.standard().ops()) {
            Row row = table().filter(r -> r.layout() == op.layout()).findFirst().orElseThrow();
            assertThat(op.minSizeBytes()).as(op.name()).isEqualTo(row.expectedMin());
            assertThat(op.sizeBytes()).as(op.name()).isEqualTo(row.expectedSize());
        }
        assertThat(IoctlTable.standard().ops()).hasSize(23);
    }

    @Test
    void fieldOffsetsMatchTheSpec() {
        assertOffsets(IoasAllowIovasStruct.LAYOUT, "ioas_id", 4, "num_iovas", 8, "__reserved", 12, "allowed_iovas", 16);
        assertOffsets(IoasCopyStruct.LAYOUT, "dst_ioas_id", 8, "src_ioas_id", 12, "length", 16, "dst_iova", 24, "src_iova", 32);
        assertOffsets(OptionStruct.LAYOUT, "option_id", 4, "op", 8, "__reserved", 10, "object_id", 12, "val64", 16);
        assertOffsets(VfioIoasStruct.LAYOUT, "ioas_id", 4, "op", 8, "__reserved", 10);
        assertOffsets(HwptAllocStruct.LAYOUT, "pt_id", 12, "out_hwpt_id", 16, "data_type", 24, "data_len", 28, "data_uptr", 32,
                "fault_id", 40, "__reserved2", 44);
        assertOffsets(HwInfoStruct.LAYOUT, "data_len", 12, "data_uptr", 16, "data_type", 24, "out_max_pasid_log2", 28, "__reserved", 29,
                "out_capabilities", 32);
        assertOffsets(HwptSetDirtyTrackingStruct.LAYOUT, "flags", 4, "hwpt_id", 8, "__reserved", 12);
        assertOffsets(HwptGetDirtyBitmapStruct.LAYOUT, "hwpt_id", 4, "flags", 8, "iova", 16, "length", 24, "page_size", 32, "data", 40);
        assertOffsets(HwptInvalidateStruct.LAYOUT, "hwpt_id", 4, "data_uptr", 8, "data_type", 16, "entry_len", 20, "entry_num", 24,
                "__reserved", 28);
        assertOffsets(FaultAllocStruct.LAYOUT, "flags", 4, "out_fault_id", 8, "out_fault_fd", 12);
        assertOffsets(IoasMapFileStruct.LAYOUT, "ioas_id", 8, "fd", 12, "start", 16, "length", 24, "iova", 32);
        assertOffsets(ViommuAllocStruct.LAYOUT, "type", 8, "dev_id", 12, "hwpt_id", 16, "out_viommu_id", 20, "data_len", 24,
                "__reserved", 28, "data_uptr", 32);
        assertOffsets(VdeviceAllocStruct.LAYOUT, "viommu_id", 4, "dev_id", 8, "out_vdevice_id", 12, "virt_id", 16);
        assertOffsets(IoasChangeProcessStruct.LAYOUT, "__reserved", 4);
        assertOffsets(VeventqAllocStruct.LAYOUT, "viommu_id", 8, "type", 12, "veventq_depth", 16, "out_veventq_id", 20,
                "out_veventq_fd", 24, "__reserved", 28);
        assertOffsets(HwQueueAllocStruct.LAYOUT, "type", 12, "index", 16, "out_hw_queue_id", 20, "nesting_parent_iova", 24, "length", 32);
        assertOffsets(IoasNoIommuGetPaStruct.LAYOUT, "flags", 4, "ioas_id", 8, "__reserved", 12, "iova", 16, "length", 24, "out_phys", 32);
        assertOffsets(TestCmdStruct.LAYOUT, "op", 4, "id", 8, "union", 16, "last", 64);
        assertOffsets(VfioIommuType1InfoStruct.LAYOUT, "flags", 4, "iova_pgsizes", 8, "cap_offset", 16);
        assertOffsets(VfioIommuType1DmaMapStruct.LAYOUT, "vaddr", 8, "iova", 16, "size", 24);
        assertOffsets(VfioIommuType1DmaUnmapStruct.LAYOUT, "iova", 8, "size", 16);
    }

    /** §8.1's absolute offsets of the union members, one field of each. */
    @Test
    void testCmdUnionMembersSitAtTheirAbsoluteOffsets() {
        String[][] fields = {
                {"add_reserved", "length", "24"}, {"mock_domain", "out_idev_id", "24"}, {"mock_domain_flags", "dev_flags", "28"},
                {"mock_domain_replace", "pt_id", "16"}, {"check_map", "uptr", "32"}, {"check_refs", "refs", "32"},
                {"create_access", "flags", "20"}, {"destroy_access_pages", "access_pages_id", "16"}, {"access_pages", "uptr", "40"},
                {"access_rw", "flags", "40"}, {"memory_limit", "limit", "16"}, {"access_replace_ioas", "ioas_id", "16"},
                {"dirty", "iova", "24"}, {"dirty", "out_nr_dirty", "56"}, {"check_iotlb", "iotlb", "20"}, {"trigger_iopf", "addr", "32"},
                {"check_dev_cache", "cache", "20"}, {"trigger_vevent", "dev_id", "16"}, {"pasid_attach", "pt_id", "20"},
                {"pasid_replace", "pt_id", "20"}, {"pasid_detach", "pasid", "16"}, {"pasid_check", "hwpt_id", "20"},
                {"dmabuf_get", "open_flags", "20"}, {"dmabuf_revoke", "revoked", "20"}};
        for (String[] f : fields) {
            assertThat(Layouts.offset(TestCmdStruct.LAYOUT, "union", f[0], f[1])).as("%s.%s", f[0], f[1]).isEqualTo(Long.parseLong(f[2]));
        }
    }

    /** The accessors read where the spec puts the fields (a value planted at the spec offset comes back). */
    @Test
    void accessorsReadTheSpecOffsets() {
        MemorySegment s = Arena.ofAuto().allocate(128, 8);
        s.set(Layouts.U64, 40, 0x1122_3344_5566_7788L);
        assertThat(new HwptGetDirtyBitmapStruct().wrap(s, 0).data()).isEqualTo(0x1122_3344_5566_7788L);
        assertThat(new TestCmdStruct().wrap(s, 0).accessPagesUptr()).isEqualTo(0x1122_3344_5566_7788L);
        s.set(Layouts.U32, 28, 0xffff_fff0);
        assertThat(new HwptAllocStruct().wrap(s, 0).dataLenBytes()).as("u32 widened").isEqualTo(0xffff_fff0L);
        assertThat(new TestCmdStruct().wrap(s, 0).mockDomainFlagsDevFlags()).isEqualTo(0xffff_fff0);
        s.set(Layouts.U16, 8, (short) 0xfffe);
        assertThat(new OptionStruct().wrap(s, 0).op()).as("u16 widened").isEqualTo(0xfffe);
        s.set(Layouts.U8, 30, (byte) 7);
        assertThat(new HwInfoStruct().wrap(s, 0).reserved(1)).isEqualTo(7);
        new HwInfoStruct().wrap(s, 0).outCapabilities(-2L).outMaxPasidLog2(20);
        assertThat(s.get(Layouts.U64, 32)).isEqualTo(-2L);
        assertThat(s.get(Layouts.U8, 28)).isEqualTo((byte) 20);
        new TestCmdStruct().wrap(s, 0).dirtyOutNrDirty(99);
        assertThat(s.get(Layouts.U64, 56)).isEqualTo(99L);
        new VeventqAllocStruct().wrap(s, 0).outVeventqFd(5);
        assertThat(s.get(Layouts.U32, 24)).isEqualTo(5);
        s.set(Layouts.U32, 16, -3);
        assertThat(new IoasMapFileStruct().wrap(s, 8).ioasId()).as("wrap at a base").isEqualTo(-3);
    }

    private static void assertOffsets(StructLayout layout, Object... nameOffset) {
        for (int i = 0; i < nameOffset.length; i += 2) {
            assertThat(Layouts.offset(layout, (String) nameOffset[i])).as("%s.%s", layout, nameOffset[i])
                    .isEqualTo(((Integer) nameOffset[i + 1]).longValue());
        }
    }
}
