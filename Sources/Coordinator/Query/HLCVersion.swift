/// A write version issued by `HybridLogicalClock`: one `UInt64` laid out as
///
/// ```
///  63                              16 15             0
/// +----------------------------------+----------------+
/// | physical: ms since 1970 (48 bit) | logical (16)   |
/// +----------------------------------+----------------+
/// ```
///
/// 48 bits of milliseconds last until the year 10889; the 16-bit logical
/// counter orders up to 65,536 versions within one millisecond (beyond that
/// the clock borrows the next millisecond, see `HybridLogicalClock.next()`).
/// Versions compare as plain integers, so a node can store and compare the
/// raw value without knowing the layout.
public struct HLCVersion: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public static let logicalBits = 16
    public static let logicalMask: UInt64 = (1 << 16) - 1
    /// The largest physical time the layout holds (2^48 - 1 ms).
    public static let maxPhysicalMillis: UInt64 = (1 << 48) - 1

    /// The version before every issued version.
    public static let zero = HLCVersion(rawValue: 0)

    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A version from its parts; `physicalMillis` is cut to 48 bits.
    public init(physicalMillis: UInt64, logical: UInt16) {
        rawValue = (physicalMillis & Self.maxPhysicalMillis) << Self.logicalBits | UInt64(logical)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var physicalMillis: UInt64 { rawValue >> Self.logicalBits }

    /// The counter within the millisecond.
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue & Self.logicalMask) }

    public static func < (a: HLCVersion, b: HLCVersion) -> Bool { a.rawValue < b.rawValue }

    public var description: String { "\(physicalMillis).\(logical)" }
}
