package dev.jiommu.pt;

import dev.jiommu.pt.format.AmdV1;
import dev.jiommu.pt.format.ArmLpae;
import dev.jiommu.pt.format.MockFormat;
import dev.jiommu.pt.format.VtdSecondStage;
import dev.jiommu.pt.format.X86_64;

import java.util.List;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The page-table format configurations every pt test runs over, in one list: a new format (the Arm
 * LPAE one, say) joins every generic test by adding one line to {@link #ALL}.
 *
 * <p>The filters below ({@link #vtdSecondStage()}, {@link #amdV1()}, …) are for tests of one
 * format's bits; they are {@code @MethodSource} targets, as is {@link #all()}.
 */
final class FormatConfigs {
    /**
     * One configuration: a format and the number of input bits its manual gives it, so tests can
     * check the geometry against the reference rather than against itself.
     */
    record FormatConfig(PageTableFormat format, int specInputBits) {
        @Override
        public String toString() {
            return format.name();
        }
    }

    /** The kernel's generic_pt KUnit configurations (iommu-hardware.md §7.2), our mock, and Arm LPAE. */
    static final List<FormatConfig> ALL = List.of(
            new FormatConfig(new VtdSecondStage(3), 39),
            new FormatConfig(new VtdSecondStage(4), 48),
            new FormatConfig(new VtdSecondStage(5), 57),
            new FormatConfig(new X86_64(4, true), 48),
            new FormatConfig(new X86_64(5, true), 57),
            new FormatConfig(new X86_64(4, false), 47),   // AMD PASID-0 variant, no sign extension
            new FormatConfig(new X86_64(5, false), 56),
            new FormatConfig(new AmdV1(3), 39),           // the kernel's "starting level 2"
            new FormatConfig(new AmdV1(4), 48),
            new FormatConfig(new AmdV1(6), 64),
            new FormatConfig(new MockFormat(3), 38),
            new FormatConfig(new MockFormat(5), 56),
            new FormatConfig(new ArmLpae(ArmLpae.Stage.S1, ArmLpae.Granule.SZ_4K, 48, 48), 48),
            new FormatConfig(new ArmLpae(ArmLpae.Stage.S2, ArmLpae.Granule.SZ_4K, 40, 40), 40),  // concatenated start
            new FormatConfig(new ArmLpae(ArmLpae.Stage.S1, ArmLpae.Granule.SZ_16K, 47, 48), 47),
            new FormatConfig(new ArmLpae(ArmLpae.Stage.S2, ArmLpae.Granule.SZ_64K, 42, 42), 42));

    private FormatConfigs() {
    }

    static Stream<FormatConfig> all() {
        return ALL.stream();
    }

    static Stream<FormatConfig> vtdSecondStage() {
        return where(f -> f instanceof VtdSecondStage);
    }

    static Stream<FormatConfig> x86() {
        return where(f -> f instanceof X86_64);
    }

    /** AMD v1 and the selftest mock, which is AMD v1 with a 2 KiB granule. */
    static Stream<FormatConfig> amdV1() {
        return where(f -> f instanceof AmdV1);
    }

    static Stream<FormatConfig> signExtended() {
        return where(PageTableFormat::signExtended);
    }

    /** Formats with addresses above their input range that are neither translated nor sign extension. */
    static Stream<FormatConfig> unextendedBelow64Bits() {
        return where(f -> !f.signExtended() && f.inputBits() < 64);
    }

    static Stream<FormatConfig> where(Predicate<PageTableFormat> filter) {
        return ALL.stream().filter(c -> filter.test(c.format()));
    }
}
