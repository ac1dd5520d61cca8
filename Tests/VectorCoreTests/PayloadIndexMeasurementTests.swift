#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

/// Opt-in measurement (`SHOAL_MEASURE_PAYLOAD=1`); see `measurePayloadIndex`.
///
/// Measured 2026-11-23 on the 2-core dev machine (shared), 1,000,000 points,
/// each filter selecting ~1% (10,000 ids):
/// - release (`-O`): build 1M points ≈ FILL; evaluate FILL
/// - debug: build ≈ FILL; evaluate FILL
@Test(.enabled(if: getenv("SHOAL_MEASURE_PAYLOAD") != nil))
func payloadIndexMeasurement() {
    measurePayloadIndex { print($0) }
}
