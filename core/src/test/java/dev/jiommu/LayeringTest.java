package dev.jiommu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Keeps DESIGN.md's layering true by reading import lines: dependencies point down only, and
 * iommufd (with the ABI above it) never names a concrete driver.
 */
class LayeringTest {
    /** Bottom to top; a layer may import its own package and those listed before it. */
    private static final List<String> LAYERS = List.of("errno", "mem", "pt", "hw", "iommu", "driver", "iommufd", "abi", "vmm", "app");
    private static final Path MAIN = Path.of("src/main/java/dev/jiommu");
    private static final Pattern IMPORT = Pattern.compile("^import\\s+(?:static\\s+)?dev\\.jiommu\\.(\\w+)", Pattern.MULTILINE);
    private static final Pattern QUALIFIED = Pattern.compile("\\bdev\\.jiommu\\.(\\w+)\\.");

    @Test
    void everyPackageBelongsToALayer() throws IOException {
        try (Stream<Path> dirs = Files.list(MAIN)) {
            List<String> unknown = dirs.filter(Files::isDirectory).map(p -> p.getFileName().toString())
                    .filter(name -> !LAYERS.contains(name)).toList();
            assertThat(unknown).as("packages outside DESIGN.md's layers").isEmpty();
        }
    }

    @Test
    void noLayerImportsALayerAboveIt() throws IOException {
        List<String> violations = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path file : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String layer = MAIN.relativize(file).getName(0).toString();
                if (!LAYERS.contains(layer)) {
                    continue; // reported by everyPackageBelongsToALayer
                }
                String source = Files.readString(file);
                for (Pattern pattern : List.of(IMPORT, QUALIFIED)) {
                    Matcher m = pattern.matcher(source);
                    while (m.find()) {
                        String target = m.group(1);
                        if (!LAYERS.contains(target)) {
                            continue;
                        }
                        if (LAYERS.indexOf(target) > LAYERS.indexOf(layer)) {
                            violations.add(MAIN.relativize(file) + " (" + layer + ") uses " + target);
                        }
                        if ((layer.equals("iommufd") || layer.equals("abi")) && target.equals("driver")) {
                            violations.add(MAIN.relativize(file) + " names a concrete driver");
                        }
                    }
                }
            }
        }
        assertThat(violations).isEmpty();
    }

    @Test
    void theCheckSeesAViolation() {
        Matcher m = IMPORT.matcher("package dev.jiommu.pt;\nimport dev.jiommu.iommufd.Ioas;\n");
        assertThat(m.find()).isTrue();
        assertThat(LAYERS.indexOf(m.group(1))).isGreaterThan(LAYERS.indexOf("pt"));
    }
}
