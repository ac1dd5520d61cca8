/// Builds keys from components so that bytewise key order matches component order.
///
/// - `tag`: one byte, usually the first, naming a key family (vectors, id map, …).
/// - Unsigned integers: big-endian, fixed width, so numeric order is byte order.
/// - Signed integers: big-endian with the sign bit flipped, for the same reason.
/// - `string`/`bytes`: escaped and terminated (`0x00` → `0x00 0xFF`, end `0x00 0x01`),
///   so component order is lexicographic order and any component may follow.
/// - `lengthPrefixed`: a big-endian `UInt32` length, then the bytes. Compact and cheap to
///   decode, but orders by length first: use it only for components matched exactly.
///
/// ```
/// var key = KeyEncoder(tag: 0x01)
/// key.append(UInt32(7))       // shard
/// key.append("face-123")      // point id
/// db.put(key.bytes, value)
/// ```
public struct KeyEncoder: Sendable, Hashable {
    public private(set) var bytes: [UInt8]

    public init() { bytes = [] }

    public init(tag: UInt8) { bytes = [tag] }

    public mutating func append(tag: UInt8) {
        bytes.append(tag)
    }

    public mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ value: Int64) {
        append(UInt64(bitPattern: value) ^ (1 << 63))
    }

    /// Appends an order-preserving, self-terminating encoding of the string's UTF-8 bytes.
    public mutating func append(_ string: String) {
        append(escaped: Array(string.utf8))
    }

    /// Appends an order-preserving, self-terminating encoding of `raw`.
    public mutating func append(escaped raw: [UInt8]) {
        appendEscapedBody(raw)
        bytes.append(contentsOf: KeyEncoding.terminator)
    }

    /// Appends the escaped bytes of `string` without the terminator: a prefix matching every
    /// key whose string component starts with `string`.
    public mutating func append(stringPrefix string: String) {
        appendEscapedBody(Array(string.utf8))
    }

    /// Appends a `UInt32` big-endian length and the bytes (not order-preserving across lengths).
    public mutating func append(lengthPrefixed raw: [UInt8]) {
        precondition(raw.count <= Int(UInt32.max), "component too long for a key")
        append(UInt32(raw.count))
        bytes.append(contentsOf: raw)
    }

    /// Appends bytes as they are (a fixed-width or final component).
    public mutating func append(raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    private mutating func appendEscapedBody(_ raw: [UInt8]) {
        for byte in raw {
            bytes.append(byte)
            if byte == 0 { bytes.append(KeyEncoding.escapedZero) }
        }
    }
}

/// Reads back the components a ``KeyEncoder`` wrote, in the same order.
/// Every read throws `.corruption` if the key is too short or malformed.
public struct KeyDecoder: Sendable {
    public let bytes: [UInt8]
    public private(set) var position: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
    }

    /// True when every byte has been read.
    public var isAtEnd: Bool { position == bytes.count }

    public mutating func readTag() throws(StorageError) -> UInt8 {
        try take(1)[0]
    }

    public mutating func readUInt32() throws(StorageError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func readUInt64() throws(StorageError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func readInt64() throws(StorageError) -> Int64 {
        Int64(bitPattern: try readUInt64() ^ (1 << 63))
    }

    /// Reads an escaped, terminated component.
    public mutating func readEscaped() throws(StorageError) -> [UInt8] {
        var out = [UInt8]()
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            guard byte == 0 else {
                out.append(byte)
                continue
            }
            guard position < bytes.count else { break }
            let next = bytes[position]
            position += 1
            if next == KeyEncoding.escapedZero {
                out.append(0)
            } else if next == KeyEncoding.terminator[1] {
                return out
            } else {
                throw StorageError(.corruption, "bad escape 0x00 0x\(String(next, radix: 16)) in key at \(position - 1)")
            }
        }
        throw StorageError(.corruption, "unterminated string component in key")
    }

    /// Reads an escaped, terminated component as UTF-8.
    public mutating func readString() throws(StorageError) -> String {
        let raw = try readEscaped()
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw StorageError(.corruption, "string component in key is not UTF-8")
        }
        return string
    }

    public mutating func readLengthPrefixed() throws(StorageError) -> [UInt8] {
        let count = Int(try readUInt32())
        return Array(try take(count))
    }

    /// The bytes not read yet (consumes them).
    public mutating func readRest() -> [UInt8] {
        defer { position = bytes.count }
        return Array(bytes[position...])
    }

    private mutating func take(_ count: Int) throws(StorageError) -> ArraySlice<UInt8> {
        guard bytes.count - position >= count else {
            throw StorageError(.corruption, "key too short: need \(count) bytes at \(position), have \(bytes.count - position)")
        }
        defer { position += count }
        return bytes[position..<position + count]
    }
}

/// Key-range helpers.
public enum KeyEncoding {
    static let escapedZero: UInt8 = 0xFF
    static let terminator: [UInt8] = [0x00, 0x01]

    /// The smallest key greater than every key that starts with `prefix`: the exclusive
    /// upper bound of a prefix scan. Drops trailing `0xFF` bytes and increments the last
    /// remaining byte (`[1, 0xFF]` → `[2]`). Nil when there is none (`prefix` empty or all
    /// `0xFF`): then every key `>= prefix` starts with `prefix`, and no bound is needed.
    public static func prefixSuccessor(_ prefix: [UInt8]) -> [UInt8]? {
        var bytes = prefix
        while let last = bytes.last {
            if last != 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return nil
    }
}
