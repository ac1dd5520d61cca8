/// A search hit the merge can order: an id and a distance (lower is better).
public protocol MergeableHit {
    var id: String { get }
    var distance: Float { get }
}

/// Merges the per-shard (or per-node) results of one search into the global result:
/// the one order of hits, used by the node over its shards and by the coordinator
/// over its nodes.
///
/// The order (the wire protocol's): distance ascending, ties by id ascending
/// in UTF-8 byte order. A NaN distance sorts after every number.
///
/// Contract of `merge(_:k:offset:)`:
/// - each input list is sorted in that order (checked in debug builds) and,
///   for a search with `offset` and `k`, holds that shard's first
///   `offset + k` hits;
/// - the output is the union of the lists in that order, with duplicate ids
///   (the same point from two shards, e.g. during a shard move) reduced to
///   their best entry, then hits `offset ..< offset + k` of it;
/// - ids are equal when their UTF-8 bytes are (no Unicode normalization);
/// - one k-way merge over a binary heap of list heads:
///   O((offset + k + d) · log s) for s lists and d dropped duplicates.
///
/// The result is shorter than `k` when the lists run out (after duplicates
/// are dropped, that can happen even if every list had `offset + k` hits,
/// exactly as in Qdrant's merge).
public enum TopKMerge {
    /// The global hits `offset ..< offset + k` of the sorted `lists`.
    public static func merge<Hit: MergeableHit>(_ lists: [[Hit]], k: Int, offset: Int = 0) -> [Hit] {
        precondition(k >= 0 && offset >= 0, "k and offset must not be negative")
        assert(lists.allSatisfy { isSorted($0) }, "TopKMerge: a shard's hits are not sorted by (distance, id)")
        var heads = HeadHeap(lists: lists)
        var seen = Set<UTF8Key>()
        var result: [Hit] = []
        result.reserveCapacity(min(k, lists.reduce(0) { $0 + $1.count }))
        var skipped = 0
        while result.count < k, let hit = heads.popMin() {
            guard seen.insert(UTF8Key(hit.id)).inserted else { continue }  // a worse copy of a merged id
            if skipped < offset {
                skipped += 1
            } else {
                result.append(hit)
            }
        }
        return result
    }

    /// True when `a` comes strictly before `b`: smaller distance, then
    /// smaller id bytes.
    @inlinable
    public static func precedes(_ a: some MergeableHit, _ b: some MergeableHit) -> Bool {
        let aNaN = a.distance.isNaN, bNaN = b.distance.isNaN
        if aNaN != bNaN { return bNaN }  // a number before NaN
        if !aNaN && a.distance != b.distance { return a.distance < b.distance }
        return a.id.utf8Precedes(b.id)
    }

    /// True when `hits` is in merge order (equal neighbours allowed).
    public static func isSorted<Hit: MergeableHit>(_ hits: [Hit]) -> Bool {
        zip(hits, hits.dropFirst()).allSatisfy { !precedes($0.1, $0.0) }
    }
}
