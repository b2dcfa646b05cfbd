package dev.jiommu.app;

/** Byte counts for people: 4K, 2M, 1G, 1.5M. */
final class Sizes {
    private Sizes() {
    }

    static String human(long bytes) {
        String[] units = {"", "K", "M", "G", "T", "P"};
        int unit = 0;
        double value = bytes;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return value == Math.rint(value) ? String.format("%d%s", (long) value, units[unit]) : String.format("%.1f%s", value, units[unit]);
    }

    /**
     * {@return the sizes set in a page-size bitmap, smallest first: "4K 2M 1G"; a run of three or more
     * consecutive powers of two reads "4K..256G"}
     */
    static String bitmap(long sizes) {
        StringBuilder sb = new StringBuilder();
        long rest = sizes;
        while (rest != 0) {
            int first = Long.numberOfTrailingZeros(rest);
            int last = first;
            while (last < 63 && (rest & (1L << (last + 1))) != 0) {
                last++;
            }
            if (!sb.isEmpty()) {
                sb.append(' ');
            }
            if (last - first >= 2) {
                sb.append(human(1L << first)).append("..").append(human(1L << last));
            } else {
                for (int s = first; s <= last; s++) {
                    sb.append(s == first ? "" : " ").append(human(1L << s));
                }
            }
            rest &= last == 63 ? 0 : -(1L << (last + 1));
        }
        return sb.toString();
    }
}
