/// FNV-1a, 64-bit: the stable hash that places a point in its shard.
///
/// Contract: the same bytes give the same hash in every process, on every
/// machine and in every release (it is part of the on-disk layout of a
/// cluster: changing it would put existing points in the wrong shard).
/// Never replace it with Swift's `Hasher`, which is seeded per process.
///
/// Reference: Fowler/Noll/Vo, http://www.isthe.com/chongo/tech/comp/fnv/
/// (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
public enum FNV1a64 {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// The hash of a byte sequence.
    @inlinable
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var h = offsetBasis
        for byte in bytes {
            h ^= UInt64(byte)
            h = h &* prime
        }
        return h
    }

    /// The hash of a string's UTF-8 bytes (no normalization: "é" precomposed
    /// and decomposed are different ids and may hash differently).
    @inlinable
    public static func hash(_ string: String) -> UInt64 { hash(string.utf8) }
}

/// Maps point ids to the shards of one collection: `FNV1a64(id.utf8) mod shardCount`.
///
/// The shard count of a collection is fixed at creation, so a router is
/// immutable; a coordinator keeps one per collection.
public struct ShardRouter: Sendable, Hashable {
    /// Number of shards, at least 1.
    public let shardCount: UInt32

    /// A router over `shardCount` shards; `shardCount` must be at least 1.
    public init(shardCount: UInt32) {
        precondition(shardCount > 0, "a collection has at least one shard")
        self.shardCount = shardCount
    }

    /// The shard (0 ..< shardCount) that owns `id`.
    @inlinable
    public func shard(for id: String) -> UInt32 {
        UInt32(FNV1a64.hash(id) % UInt64(shardCount))
    }

    /// Splits `items` by owning shard, keeping their relative order:
    /// `result[s]` holds the items of shard `s` (empty for shards with none).
    /// The coordinator uses it to fan a write batch out.
    public func partition<Item>(_ items: some Sequence<Item>, id: (Item) -> String) -> [[Item]] {
        var groups = [[Item]](repeating: [], count: Int(shardCount))
        for item in items {
            groups[Int(shard(for: id(item)))].append(item)
        }
        return groups
    }
}
