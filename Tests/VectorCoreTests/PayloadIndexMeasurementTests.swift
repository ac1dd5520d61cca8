#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

/// Opt-in measurement (`SHOAL_MEASURE_PAYLOAD=1`); see `measurePayloadIndex`.
///
/// Measured 2026-11-23 on the 2-core dev machine (shared with other builds,
/// load ≈ 5, so ±30%), 1,000,000 points with 4 fields, filters selecting ~1%
/// (≈10,000 ids), best of 5:
///
/// | filter                                   | release | debug  |
/// | ---------------------------------------- | ------- | ------ |
/// | category == c7 (a posting list)          | 0.2 µs  | 0.7 µs |
/// | 100 <= price < 110 (a range slice)       | 0.6 ms  | 23 ms  |
/// | stock < 10 and price < 100               | 1.0 ms  | 24 ms  |
/// | category in c0…c9 and not(stock >= 10)   | 6.6 ms  | 91 ms  |
/// | stock == 3 or (price < 5 and tags != w1) | 4.0 ms  | 22 ms  |
///
/// Estimates take 1–75 µs (release). Building the index (1M `set` calls,
/// metadata generation included) takes ≈5.5 s release, ≈41 s debug; the
/// release process peaks at ≈330 MB resident.
@Test(.enabled(if: getenv("SHOAL_MEASURE_PAYLOAD") != nil))
func payloadIndexMeasurement() {
    measurePayloadIndex { print($0) }
}
