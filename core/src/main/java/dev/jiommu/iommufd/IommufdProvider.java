package dev.jiommu.iommufd;

import dev.jiommu.errno.Errno;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/**
 * A backend {@link Iommufd#open()} may choose, found with {@link ServiceLoader}: the layers above
 * iommufd provide them (the kernel backend in {@code abi}, the emulated platform in {@code app}),
 * so this layer names none.
 */
public interface IommufdProvider {
    /** {@return the backend's name, as {@link Iommufd#backend()} reports it} */
    String name();

    /** {@return the order of trying: higher first (the kernel before the emulation)} */
    int priority();

    /** {@return a fresh context} @throws IommufdException when this backend is not available here */
    Iommufd open();

    /** The choice {@link Iommufd#open()} makes. */
    static Iommufd openBest() {
        List<IommufdProvider> providers = new ArrayList<>();
        ServiceLoader.load(IommufdProvider.class, IommufdProvider.class.getClassLoader()).forEach(providers::add);
        providers.sort(Comparator.comparingInt(IommufdProvider::priority).reversed());
        List<String> refusals = new ArrayList<>();
        for (IommufdProvider provider : providers) {
            try {
                Iommufd iommufd = provider.open();
                System.getLogger(Iommufd.class.getName()).log(System.Logger.Level.INFO,
                        "iommufd backend: " + iommufd.backend() + (refusals.isEmpty() ? "" : " (" + String.join("; ", refusals) + ")"));
                return iommufd;
            } catch (IommufdException e) {
                refusals.add(provider.name() + " unavailable: " + e.getMessage());
            }
        }
        throw IommufdException.of(Errno.ENODEV, "no iommufd backend opened: %s",
                refusals.isEmpty() ? "none installed" : String.join("; ", refusals));
    }
}
