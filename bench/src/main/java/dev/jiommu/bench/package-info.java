/** JMH benchmarks of jiommu, each beside a baseline measured in the same run. */
package dev.jiommu.bench;
