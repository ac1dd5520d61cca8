import VectorCore
import VectorStorage

/// A shard replica's name: collection and shard number.
public struct ReplicaRef: Hashable, Sendable, CustomStringConvertible {
    public let collection: String
    public let shard: UInt32
    public init(collection: String, shard: UInt32) {
        self.collection = collection
        self.shard = shard
    }
    public var description: String { "\(collection)/\(shard)" }
}

/// Key layout of a node's one RocksDB (all replicas share it: one WAL, so one
/// fsync covers concurrent writes to every replica; dropping a replica is one
/// range delete).
///
///     [0x01] escaped(collection) u32(shard)            → catalog record (replica number + config)
///     [0x02] u32(replica) 'i' escaped(external id)     → IdRecord (internal id, version, sequence, deleted)
///     [0x02] u32(replica) 'p' u32(internal id)         → PointRecord (vector, id, metadata)
///     [0x02] u32(replica) 'h'                          → graph image header
///     [0x02] u32(replica) 'g' u32(chunk)               → graph image bytes
///     [0x02] u32(replica) 'f'                          → placement fence (u64 min epoch, u8 retired)
///     [0x03] 'n'                                       → u32 the next replica number
///     [0x03] 't'                                       → u64 the highest leader term seen
///     [0x03] 'w'                                       → empty: the storage watch's probe write
///
/// A replica number is never reused (the next one is stored), so it also names
/// the replica's incarnation: a drop aimed at an earlier replica of the same name
/// can be told apart from the current one.
enum Keys {
    static let catalogTag: UInt8 = 0x01
    static let replicaTag: UInt8 = 0x02
    static let nodeTag: UInt8 = 0x03
    static let nextReplicaNumber: [UInt8] = [nodeTag, UInt8(ascii: "n")]
    static let writeProbe: [UInt8] = [nodeTag, UInt8(ascii: "w")]
    static let highestTerm: [UInt8] = [nodeTag, UInt8(ascii: "t")]

    static func catalog(_ ref: ReplicaRef) -> [UInt8] {
        var k = KeyEncoder(tag: catalogTag)
        k.append(ref.collection)
        k.append(ref.shard)
        return k.bytes
    }

    static func replica(_ number: UInt32) -> [UInt8] {
        var k = KeyEncoder(tag: replicaTag)
        k.append(number)
        return k.bytes
    }

    static func idPrefix(_ number: UInt32) -> [UInt8] { replica(number) + [UInt8(ascii: "i")] }
    static func pointPrefix(_ number: UInt32) -> [UInt8] { replica(number) + [UInt8(ascii: "p")] }
    static func imageChunkPrefix(_ number: UInt32) -> [UInt8] { replica(number) + [UInt8(ascii: "g")] }
    static func imageHeader(_ number: UInt32) -> [UInt8] { replica(number) + [UInt8(ascii: "h")] }
    static func fence(_ number: UInt32) -> [UInt8] { replica(number) + [UInt8(ascii: "f")] }

    static func id(_ number: UInt32, _ externalID: String) -> [UInt8] {
        var k = KeyEncoder()
        k.append(raw: idPrefix(number))
        k.append(externalID)
        return k.bytes
    }

    static func externalID(fromIdKey key: [UInt8], prefixLength: Int) throws -> String {
        var d = KeyDecoder(Array(key[prefixLength...]))
        return try d.readString()
    }

    static func point(_ number: UInt32, _ internalID: UInt32) -> [UInt8] {
        var k = KeyEncoder()
        k.append(raw: pointPrefix(number))
        k.append(internalID)
        return k.bytes
    }

    static func imageChunk(_ number: UInt32, _ chunk: UInt32) -> [UInt8] {
        var k = KeyEncoder()
        k.append(raw: imageChunkPrefix(number))
        k.append(chunk)
        return k.bytes
    }
}

/// What a replica knows of one external id: where its point lives, its version,
/// the replica write sequence that last changed it, and whether it is a tombstone.
/// Tombstones are kept so that an older write arriving late is still ignored.
struct IdRecord: Equatable {
    static let noInternalID = UInt32.max
    var internalID: UInt32
    var version: UInt64
    var sequence: UInt64
    var deleted: Bool

    func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(21)
        out.appendBigEndian(internalID)
        out.appendBigEndian(version)
        out.appendBigEndian(sequence)
        out.append(deleted ? 1 : 0)
        return out
    }

    init(internalID: UInt32, version: UInt64, sequence: UInt64, deleted: Bool) {
        self.internalID = internalID
        self.version = version
        self.sequence = sequence
        self.deleted = deleted
    }

    init(decoding bytes: [UInt8]) throws(ShoalError) {
        guard bytes.count == 21 else { throw ShoalError(.dataLoss, "id record of \(bytes.count) bytes, expected 21") }
        internalID = bytes.readBigEndian(at: 0)
        version = bytes.readBigEndian(at: 4)
        sequence = bytes.readBigEndian(at: 12)
        deleted = bytes[20] != 0
    }
}

/// A stored point (layout in `RecordCoding`).
struct PointRecord {
    var vector: [Float]
    var id: String
    var metadata: Metadata

    init(vector: [Float], id: String, metadata: Metadata) {
        self.vector = vector
        self.id = id
        self.metadata = metadata
    }

    func encoded() -> [UInt8] { RecordCoding.encodePoint(vector: vector, id: id, metadata: metadata) }

    init(decoding bytes: [UInt8]) throws {
        (vector, id, metadata) = try bytes.withUnsafeBytes { raw in
            var reader = RecordCoding.Reader(raw)
            let vector = try reader.vector(copy: true)!
            return (vector, try reader.string(lengthBytes: 2), try reader.metadata())
        }
    }

    /// Only the metadata, without copying the vector (recovery needs the vector only
    /// for points the graph image does not cover).
    static func decodeMetadata(_ bytes: UnsafeRawBufferPointer) throws(ShoalError) -> Metadata {
        var reader = RecordCoding.Reader(bytes)
        _ = try reader.vector(copy: false)
        _ = try reader.take(Int(try reader.integer(UInt16.self)))
        return try reader.metadata()
    }

    static func decodeVector(_ bytes: UnsafeRawBufferPointer) throws(ShoalError) -> [Float] {
        var reader = RecordCoding.Reader(bytes)
        return try reader.vector(copy: true)!
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    func readBigEndian<T: FixedWidthInteger>(at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value = value << 8 | T(self[offset + i]) }
        return value
    }
}
