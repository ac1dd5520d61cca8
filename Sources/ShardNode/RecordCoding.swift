import VectorCore

/// The byte layout of stored points (a storage format, not the wire's):
///
///     [u32 dimension][dimension × f32 in host byte order]
///     [u16 id length][id bytes]
///     [u16 field count] then per field: [u16 key length][key][u8 kind][value]
///         kind 0 string: [u32 length][bytes]   1 int: i64   2 double: f64 bits
///              3 bool: u8                      4 string list: [u32 count] then strings as kind 0
///
/// Integers (and a double's bits) big-endian; the vector is the floats' raw memory, so a
/// database moves only between hosts of the same byte order (every target today is
/// little-endian). Hand-written because recovery decodes every point's metadata:
/// a protobuf map per point made restarts twice as slow.
enum RecordCoding {
    static func encodePoint(vector: [Float], id: String, metadata: Metadata) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4 + vector.count * 4 + 2 + id.utf8.count + 2 + metadata.count * 24)
        out.appendBigEndian(UInt32(vector.count))
        vector.withUnsafeBytes { out.append(contentsOf: $0) }
        appendShortString(id, to: &out)
        out.appendBigEndian(UInt16(metadata.count))
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            appendShortString(key, to: &out)
            switch value {
            case .string(let s):
                out.append(0)
                appendString(s, to: &out)
            case .int(let i):
                out.append(1)
                out.appendBigEndian(i)
            case .double(let d):
                out.append(2)
                out.appendBigEndian(d.bitPattern)
            case .bool(let b):
                out.append(3)
                out.append(b ? 1 : 0)
            case .stringList(let list):
                out.append(4)
                out.appendBigEndian(UInt32(list.count))
                for s in list { appendString(s, to: &out) }
            }
        }
        return out
    }

    private static func appendShortString(_ s: String, to out: inout [UInt8]) {
        out.appendBigEndian(UInt16(s.utf8.count))  // ids ≤ 1 KiB, keys ≤ 256 B (validated)
        out.append(contentsOf: s.utf8)
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        out.appendBigEndian(UInt32(s.utf8.count))
        out.append(contentsOf: s.utf8)
    }

    /// A bounds-checked reader over a stored record.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func take(_ n: Int) throws(ShoalError) -> UnsafeRawBufferPointer {
            guard n >= 0, offset + n <= bytes.count else { throw ShoalError(.dataLoss, "stored point record is truncated") }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(ShoalError) -> T {
            T(bigEndian: try take(MemoryLayout<T>.size).loadUnaligned(as: T.self))
        }

        mutating func string(lengthBytes: Int) throws(ShoalError) -> String {
            let n = lengthBytes == 2 ? Int(try integer(UInt16.self)) : Int(try integer(UInt32.self))
            return String(decoding: try take(n), as: UTF8.self)
        }

        /// Skips (or returns) the vector at the start of the record.
        mutating func vector(copy: Bool) throws(ShoalError) -> [Float]? {
            let dimension = Int(try integer(UInt32.self))
            let raw = try take(dimension * 4)
            return copy ? Array(raw.bindMemory(to: Float.self)) : nil
        }

        mutating func metadata() throws(ShoalError) -> Metadata {
            let count = Int(try integer(UInt16.self))
            var metadata = Metadata(minimumCapacity: count)
            for _ in 0..<count {
                let key = try string(lengthBytes: 2)
                switch try integer(UInt8.self) {
                case 0: metadata[key] = .string(try string(lengthBytes: 4))
                case 1: metadata[key] = .int(try integer(Int64.self))
                case 2: metadata[key] = .double(Double(bitPattern: try integer(UInt64.self)))
                case 3: metadata[key] = .bool(try integer(UInt8.self) != 0)
                case 4:
                    let n = Int(try integer(UInt32.self))
                    var list: [String] = []
                    list.reserveCapacity(n)
                    for _ in 0..<n { list.append(try string(lengthBytes: 4)) }
                    metadata[key] = .stringList(list)
                case let kind: throw ShoalError(.dataLoss, "stored metadata of unknown kind \(kind)")
                }
            }
            return metadata
        }
    }
}
