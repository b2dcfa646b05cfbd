package dev.jiommu.app;

import dev.jiommu.app.server.IommufdServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code jiommu serve}: /dev/iommu for unmodified programs, through native/libjiommu-preload.so. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve the iommufd ABI on a Unix socket (mode 0600, same uid or root only).",
                "Run a program against it with: JIOMMU_SOCKET=PATH LD_PRELOAD=native/build/libjiommu-preload.so PROGRAM"})
final class ServeCommand implements Callable<Integer> {
    @CommandLine.Spec
    private CommandLine.Model.CommandSpec spec;

    @Option(names = "--socket", required = true, paramLabel = "PATH", description = "The socket to listen on (a stale one is replaced).")
    private Path socket;

    @Option(names = "--memory-mib", defaultValue = "16384", paramLabel = "MIB",
            description = "Emulated physical memory, sparse (default ${DEFAULT-VALUE} MiB).")
    private long memoryMib;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        long bytes = Math.max(2, (memoryMib + 1) & ~1L) << 20;
        try (IommufdServer server = IommufdServer.start(socket, bytes, err)) {
            Runtime.getRuntime().addShutdownHook(new Thread(server::close));
            out.println("jiommu serve: listening on " + server.socketPath());
            out.flush();
            server.join();
        }
        return 0;
    }
}
