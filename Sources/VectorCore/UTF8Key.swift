/// A string compared, hashed and ordered by its UTF-8 bytes — how point ids are
/// identified everywhere (RocksDB keys, routing, the node's id map, the merge).
///
/// Swift's `String` `==` and `<` follow Unicode canonical equivalence: "café"
/// precomposed (NFC) and decomposed (NFD) are equal strings but different byte
/// sequences, so a map keyed by `String` would merge two points that RocksDB and
/// the shard router keep apart. Ids are never normalised.
public struct UTF8Key: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let string: String

    @inlinable
    public init(_ string: String) { self.string = string }

    @inlinable
    public static func == (a: UTF8Key, b: UTF8Key) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    /// Byte order, the wire protocol's tie order.
    @inlinable
    public static func < (a: UTF8Key, b: UTF8Key) -> Bool { a.string.utf8.lexicographicallyPrecedes(b.string.utf8) }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        var string = string
        string.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { string }
}

extension String {
    /// True when `self` comes before `other` in UTF-8 byte order (not Unicode order).
    @inlinable
    public func utf8Precedes(_ other: String) -> Bool { utf8.lexicographicallyPrecedes(other.utf8) }
}
