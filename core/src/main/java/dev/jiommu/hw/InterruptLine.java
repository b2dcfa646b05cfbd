package dev.jiommu.hw;

/**
 * How software connects to a unit's interrupts. A unit signals only after releasing its own lock,
 * so a handler may call back into the unit's registers.
 */
public interface InterruptLine {
    void connect(MsiSink sink);
}
