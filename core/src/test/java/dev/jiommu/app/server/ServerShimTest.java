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
        String out = run();
        assertThat(out).contains("shim_smoke: after exec ok").contains("shim_smoke: ok");
    }

    @Test
    void anotherUidIsRefusedEvenThroughAnOpenSocket() throws IOException, InterruptedException {
        assumeTrue("root".equals(System.getProperty("user.name")), "needs root to become another uid");
        String out = run("--as-nobody");
        assertThat(out).contains("shim_smoke: refused ok");
    }

    /** Compiles and runs shim_smoke under the shim; {@return its output} after asserting exit 0. */
    private String run(String... args) throws IOException, InterruptedException {
        Path shim = NATIVE.resolve("build/libjiommu-preload.so");
        assumeTrue(Files.exists(shim), "no shim: the machine has no C compiler");
        Path program = dir.resolve("shim_smoke");
        Process cc = new ProcessBuilder("gcc", "-O1", "-o", program.toString(), NATIVE.resolve("tests/shim_smoke.c").toString())
                .redirectErrorStream(true).start();
        String ccOut = new String(cc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(cc.waitFor()).as("gcc: %s", ccOut).isZero();

        server = IommufdServer.start(dir.resolve("jiommu.sock"), 64L << 20, null);
        // Let anyone reach the socket, so that only the server's SO_PEERCRED check stands in the way.
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setPosixFilePermissions(server.socketPath(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
        var command = new java.util.ArrayList<String>();
        command.add(program.toString());
        command.addAll(java.util.List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("LD_PRELOAD", shim.toString());
        builder.environment().put("JIOMMU_SOCKET", server.socketPath().toString());
        Process p = builder.start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the program finishes").isTrue();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.exitValue()).as(out).isZero();
        return out;
    }
}
