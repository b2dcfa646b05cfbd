package dev.jiommu.hw;

/** Where a message-signalled interrupt goes: the address and data software programmed. */
@FunctionalInterface
public interface MsiSink {
    void signal(long address, int data);
}
