package dev.jiommu.hw;

/** A PCI requester id (source id): bus [15:8], device [7:3], function [2:0]. */
public record PciRequesterId(int bus, int device, int function) {
    public PciRequesterId {
        if (bus < 0 || bus > 255 || device < 0 || device > 31 || function < 0 || function > 7) {
            throw new IllegalArgumentException(String.format("bad requester id %d:%d.%d", bus, device, function));
        }
    }

    public static PciRequesterId of(int rid) {
        return new PciRequesterId((rid >>> 8) & 0xff, (rid >>> 3) & 0x1f, rid & 7);
    }

    /** {@return the 16-bit source id} */
    public int rid() {
        return bus << 8 | devfn();
    }

    public int devfn() {
        return device << 3 | function;
    }

    @Override
    public String toString() {
        return String.format("0000:%02x:%02x.%d", bus, device, function);
    }
}
