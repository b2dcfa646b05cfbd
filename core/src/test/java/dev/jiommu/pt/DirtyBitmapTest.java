package dev.jiommu.pt;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class DirtyBitmapTest {
    private static final int SHIFT = 12;
    private static final long PAGE = 1L << SHIFT;

    @Test
    void markSetsEveryPageTheRangeTouchesIncludingPartialOnes() {
        DirtyBitmap bitmap = new DirtyBitmap(0x10_0000, SHIFT, 16);
        bitmap.mark(0x10_0000 + 2 * PAGE + 1, 0x10_0000 + 4 * PAGE); // ends on the first byte of page 4
        assertThat(bitmap.words()).containsExactly(0b1_1100L);
        assertThat(bitmap.cardinality()).isEqualTo(3);
        assertThat(bitmap.isSet(1)).isFalse();
        assertThat(bitmap.isSet(2)).isTrue();
        assertThat(bitmap.isSet(4)).isTrue();
        assertThat(bitmap.isSet(5)).isFalse();
    }

    @Test
    void markClipsToTheBitmapAtBothEnds() {
        DirtyBitmap bitmap = new DirtyBitmap(0x10_0000, SHIFT, 8);
        bitmap.mark(0, 0x10_0000 + PAGE - 1);
        bitmap.mark(0x10_0000 + 7 * PAGE, -1L);
        assertThat(bitmap.words()).containsExactly(0b1000_0001L);
    }

    @Test
    void markOutsideTheBitmapChangesNothing() {
        DirtyBitmap bitmap = new DirtyBitmap(0x10_0000, SHIFT, 8);
        bitmap.mark(0, 0x10_0000 - 1);
        bitmap.mark(0x10_0000 + 8 * PAGE, 0x10_0000 + 100 * PAGE);
        assertThat(bitmap.cardinality()).isZero();
    }

    @Test
    void pageIndexesPastSixtyFourLandInLaterWordsBitZeroFirst() {
        DirtyBitmap bitmap = new DirtyBitmap(0, SHIFT, 130);
        bitmap.mark(63 * PAGE, 64 * PAGE);
        bitmap.mark(129 * PAGE, 129 * PAGE);
        assertThat(bitmap.words()).containsExactly(1L << 63, 1L, 1L << 1);
        assertThat(bitmap.pages()).isEqualTo(130);
    }

    @Test
    void wordsIsACopy() {
        DirtyBitmap bitmap = new DirtyBitmap(0, SHIFT, 4);
        bitmap.words()[0] = -1L;
        assertThat(bitmap.cardinality()).isZero();
    }

    @Test
    void addressesAboveBitSixtyThreeCompareUnsigned() {
        long base = -4 * PAGE; // the last four pages of a 64-bit address space (AMD v1 mode 6)
        DirtyBitmap bitmap = new DirtyBitmap(base, SHIFT, 4);
        bitmap.mark(base + PAGE, base + 2 * PAGE - 1);
        bitmap.mark(-1L, -1L);
        assertThat(bitmap.words()).containsExactly(0b1010L);
        bitmap.mark(0, PAGE); // low addresses are below the bitmap, not after it
        assertThat(bitmap.words()).containsExactly(0b1010L);
    }

    @Test
    void constructorRefusesBadGeometry() {
        assertThatThrownBy(() -> new DirtyBitmap(PAGE / 2, SHIFT, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DirtyBitmap(0, SHIFT, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DirtyBitmap(0, -1, 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DirtyBitmap(0, 63, 1)).isInstanceOf(IllegalArgumentException.class);
    }

    /** A bitmap covering pages past 2^64 would have to wrap; its last covered address then wrapped too and marks were lost. */
    @Test
    void constructorRefusesARangePastTheTopOfTheAddressSpace() {
        assertThatThrownBy(() -> new DirtyBitmap(-PAGE, SHIFT, 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DirtyBitmap(1L << 62, 62, 4)).isInstanceOf(IllegalArgumentException.class);
        DirtyBitmap top = new DirtyBitmap(-PAGE, SHIFT, 1);
        top.mark(-PAGE, -1L);
        assertThat(top.isSet(0)).isTrue();
        assertThat(new DirtyBitmap(0, 62, 4).pages()).isEqualTo(4); // exactly 2^64 bytes is fine
    }

    @Test
    void markSetsEveryPageTheRangeTouchesAcrossWords() {
        DirtyBitmap bitmap = new DirtyBitmap(0x10000, 12, 200);
        bitmap.mark(0x10000 + 60 * 4096 + 5, 0x10000 + 70 * 4096);
        assertThat(bitmap.cardinality()).isEqualTo(11);
        assertThat(bitmap.isSet(59)).isFalse();
        assertThat(bitmap.isSet(60)).isTrue();
        assertThat(bitmap.isSet(70)).isTrue();
        assertThat(bitmap.isSet(71)).isFalse();
        assertThat(bitmap.word(0)).isEqualTo(0xFL << 60);
        assertThat(bitmap.word(1)).isEqualTo(0x7FL);
        assertThat(bitmap.words()).containsExactly(0xFL << 60, 0x7FL, 0, 0);
    }

    @Test
    void markIsClippedToTheBitmap() {
        DirtyBitmap bitmap = new DirtyBitmap(0x10000, 12, 4);
        bitmap.mark(0, -1L);
        assertThat(bitmap.cardinality()).isEqualTo(4);
        assertThat(bitmap.words()).containsExactly(0xFL);
    }

    @Test
    void aHugeRangeCostsOnlyWhatIsMarkedAndNextSetBitFindsIt() {
        long pages = (1L << 52) - 1; // all but the last page of the 64-bit space
        DirtyBitmap bitmap = new DirtyBitmap(0, 12, pages);
        long far = (1L << 50) + 3;
        bitmap.mark(far << 12, far << 12);
        bitmap.mark(7L << 12, 8L << 12);
        assertThat(bitmap.cardinality()).isEqualTo(3);
        assertThat(bitmap.nextSetBit(0)).isEqualTo(7);
        assertThat(bitmap.nextSetBit(8)).isEqualTo(8);
        assertThat(bitmap.nextSetBit(9)).isEqualTo(far);
        assertThat(bitmap.nextSetBit(far + 1)).isEqualTo(-1);
        assertThat(bitmap.isSet(far)).isTrue();
    }

    @Test
    void aRangeBeyondTheAddressSpaceIsRefused() {
        assertThatThrownBy(() -> new DirtyBitmap(0, 12, 1L << 52 | 1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new DirtyBitmap(0, 12, 0)).isInstanceOf(IllegalArgumentException.class);
    }
}
