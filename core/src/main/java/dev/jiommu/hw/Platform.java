package dev.jiommu.hw;

import dev.jiommu.mem.PhysicalMemory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An emulated machine: one physical memory, several IOMMU units, and PCI devices each behind one
 * unit (the DMAR device scopes of ACPI). Built once by the application or a test; nothing here is
 * global.
 *
 * <p>Thread safety: synchronized.
 */
public final class Platform {
    /** One IOMMU unit with its register page and translator. */
    public record Unit(String name, MmioRegisters registers, InterruptLine interrupts, Translator translator) {
    }

    /** A device slot: its requester id and the unit its DMA goes through. */
    public record Slot(PciRequesterId requesterId, Unit unit) {
    }

    private final PhysicalMemory memory;
    private final List<Unit> units = new ArrayList<>();
    private final Map<Integer, Slot> slots = new LinkedHashMap<>();

    public Platform(PhysicalMemory memory) {
        this.memory = memory;
    }

    public PhysicalMemory memory() {
        return memory;
    }

    public synchronized Unit addUnit(String name, MmioRegisters registers, InterruptLine interrupts, Translator translator) {
        Unit unit = new Unit(name, registers, interrupts, translator);
        units.add(unit);
        return unit;
    }

    /** Places a device at {@code rid} behind {@code unit}; a requester id is used once. */
    public synchronized Slot plug(PciRequesterId rid, Unit unit) {
        if (!units.contains(unit)) {
            throw new IllegalArgumentException(unit.name() + " is not a unit of this platform");
        }
        Slot slot = new Slot(rid, unit);
        if (slots.putIfAbsent(rid.rid(), slot) != null) {
            throw new IllegalArgumentException("requester id " + rid + " is taken");
        }
        return slot;
    }

    public synchronized List<Unit> units() {
        return List.copyOf(units);
    }

    public synchronized List<Slot> slots() {
        return List.copyOf(slots.values());
    }

    /** {@return the slot of {@code rid}, or null} */
    public synchronized Slot slot(int rid) {
        return slots.get(rid);
    }
}
