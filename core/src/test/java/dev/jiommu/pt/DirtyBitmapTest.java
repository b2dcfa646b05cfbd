package dev.jiommu.pt;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class DirtyBitmapTest {
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
