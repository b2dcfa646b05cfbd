package dev.jiommu.app.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The shim from a real C process: native/tests/shim_smoke.c, compiled here with gcc and run under
 * native/build/libjiommu-preload.so (which the Maven build makes) against an embedded server. Skipped
 * only where the machine has no C compiler, as the native build is then.
 */
class ServerShimTest {
    private static final Path NATIVE = Path.of("..", "native").toAbsolutePath().normalize();

    @TempDir
    Path dir;
    private IommufdServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void unmodifiedProgramSeesTheKernelsFdRules() throws IOException, InterruptedException {
        Path shim = NATIVE.resolve("build/libjiommu-preload.so");
        assumeTrue(Files.exists(shim), "no shim: the machine has no C compiler");
        Path program = dir.resolve("shim_smoke");
        Process cc = new ProcessBuilder("gcc", "-O1", "-o", program.toString(), NATIVE.resolve("tests/shim_smoke.c").toString())
                .redirectErrorStream(true).start();
        String ccOut = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(cc.waitFor()).as("gcc: %s", ccOut).isZero();

        server = IommufdServer.start(dir.resolve("jiommu.sock"), 64L << 20, null);
        ProcessBuilder run = new ProcessBuilder(program.toString()).redirectErrorStream(true);
        run.environment().put("LD_PRELOAD", shim.toString());
        run.environment().put("JIOMMU_SOCKET", server.socketPath().toString());
        Process p = run.start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the program finishes").isTrue();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(out).contains("shim_smoke: ok");
        assertThat(p.exitValue()).as(out).isZero();
    }
}
