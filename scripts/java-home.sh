# Sourced by ./jiommu and scripts/test.sh: exports JAVA_HOME pointing at a JDK 25 or newer.
# Order: JAVA_HOME if it is 25+, then the JDKs under /usr/lib/jvm (Temurin 25 first).

jiommu_java_major() {
    # Prints the feature version of the JDK at $1 (empty if it is not a JDK).
    [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 1
    "$1/bin/java" -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

jiommu_find_jdk() {
    local candidate major
    for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-* /usr/lib/jvm/*; do
        [ -n "$candidate" ] && [ -d "$candidate" ] || continue
        major=$(jiommu_java_major "$candidate") || continue
        if [ -n "$major" ] && [ "$major" -ge 25 ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

if ! JAVA_HOME=$(jiommu_find_jdk); then
    echo "jiommu needs a JDK 25 or newer: none found in JAVA_HOME or /usr/lib/jvm." >&2
    echo "Install one (for example Temurin 25) and set JAVA_HOME to it." >&2
    exit 1
fi
export JAVA_HOME
