import ShoalProto
import ShoalRPC
import SwiftProtobuf
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
enum Keys {
    static let catalogTag: UInt8 = 0x01
    static let replicaTag: UInt8 = 0x02

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

/// A stored point: `[u32 dimension][dimension × f32 little-endian][Shoal_V1_Point with id and metadata]`.
/// The vector is kept raw so loading a million points does not go through protobuf.
struct PointRecord {
    var vector: [Float]
    var id: String
    var metadata: Metadata

    func encoded() throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(4 + vector.count * 4 + id.utf8.count + 16)
        out.appendBigEndian(UInt32(vector.count))
        vector.withUnsafeBytes { out.append(contentsOf: $0) }
        var rest = Shoal_V1_Point()
        rest.id = id
        rest.metadata = encodeMetadata(metadata)
        out.append(contentsOf: try rest.serializedBytes() as [UInt8])
        return out
    }

    init(vector: [Float], id: String, metadata: Metadata) {
        self.vector = vector
        self.id = id
        self.metadata = metadata
    }

    init(decoding bytes: [UInt8]) throws {
        guard bytes.count >= 4 else { throw ShoalError(.dataLoss, "point record of \(bytes.count) bytes") }
        let dimension = Int(bytes.readBigEndian(at: 0) as UInt32)
        let end = 4 + dimension * 4
        guard bytes.count >= end else { throw ShoalError(.dataLoss, "point record shorter than its vector") }
        vector = bytes.withUnsafeBytes { raw in
            Array(UnsafeRawBufferPointer(rebasing: raw[4..<end]).bindMemory(to: Float.self))
        }
        let rest = try Shoal_V1_Point(serializedBytes: Array(bytes[end...]))
        id = rest.id
        metadata = try decodeMetadata(rest.metadata)
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
