package dev.jiommu.iommufd;

import dev.jiommu.abi.AbiIommufd;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link IommufdTest} again, every call through the ABI ({@link AbiIommufd}). */
class IommufdAbiTest extends IommufdTest {
    @Override
    boolean throughAbi() {
        return true;
    }

    /** Guards the wiring: the cases above really reach the context through the decoder. */
    @Test
    void casesRunThroughTheDecoder() {
        assertThat(fd).isInstanceOf(AbiIommufd.class);
        int open = ((AbiIommufd) fd).fds().openCount();
        Iommufd.FaultQueueAlloc fault = fd.faultQueueAlloc(0);
        assertThat(((AbiIommufd) fd).fds().openCount()).as("the fault queue's fd in the decoder's table").isEqualTo(open + 1);
        fault.file().close();
        assertThat(((AbiIommufd) fd).fds().openCount()).isEqualTo(open);
    }
}
