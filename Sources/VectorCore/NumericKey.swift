/// A number from an `.int` or `.double` metadata value, ordered and compared
/// exactly by value across the two kinds: `3 == 3.0`, and
/// `9007199254740993 > 9007199254740992.0` (no rounding through `Double`).
///
/// Canonical: a double with an integral value that fits in `Int64` is stored
/// as that integer, so the synthesized `Hashable` agrees with numeric equality
/// (`-0.0`, `0.0` and `0` are one key). NaN has no key.
struct NumericKey: Hashable, Comparable, Sendable {
    private enum Storage: Hashable, Sendable {
        case int(Int64)
        /// Never NaN; never an integral value inside the `Int64` range.
        case double(Double)
    }

    private let storage: Storage

    init(_ i: Int64) { storage = .int(i) }

    /// Nil for NaN.
    init?(_ d: Double) {
        if d.isNaN { return nil }
        if d >= -0x1p63, d < 0x1p63, d == d.rounded(.towardZero) {
            storage = .int(Int64(d))
        } else {
            storage = .double(d)
        }
    }

    /// Nil unless `value` is an `.int` or a non-NaN `.double`.
    init?(_ value: MetadataValue) {
        switch value {
        case .int(let i): self.init(i)
        case .double(let d): self.init(d)
        default: return nil
        }
    }

    static func < (a: NumericKey, b: NumericKey) -> Bool {
        switch (a.storage, b.storage) {
        case (.int(let x), .int(let y)): x < y
        case (.double(let x), .double(let y)): x < y
        case (.int(let x), .double(let y)): compare(x, y) < 0
        case (.double(let x), .int(let y)): compare(y, x) > 0
        }
    }

    /// Sign of `i - d`, exactly; `d` is not NaN.
    private static func compare(_ i: Int64, _ d: Double) -> Int {
        if d >= 0x1p63 { return -1 }
        if d < -0x1p63 { return 1 }
        let floor = d.rounded(.down)  // in [-2^63, 2^63), so it converts exactly
        let f = Int64(floor)
        if i < f { return -1 }
        if i > f { return 1 }
        return d == floor ? 0 : -1
    }
}
