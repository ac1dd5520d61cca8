import VectorCore
import Coordinator
import ShoalProto
import Testing

struct Hit: MergeableHit, Equatable, CustomStringConvertible {
    var id: String
    var distance: Float
    var shard: Int = 0
    var description: String { "\(id)@\(distance)" }
}

/// The specification: sort everything, keep each id's first (best) entry,
/// skip `offset`, take `k`.
func oracle(_ lists: [[Hit]], k: Int, offset: Int) -> [Hit] {
    let sorted = lists.joined().sorted { TopKMerge.precedes($0, $1) }
    var seen = Set<[UInt8]>()
    let unique = sorted.filter { seen.insert(Array($0.id.utf8)).inserted }
    return Array(unique.dropFirst(offset).prefix(k))
}

/// Compares by (id, distance): which of two equal-keyed duplicates survives is not specified.
func keys(_ hits: [Hit]) -> [String] { hits.map { "\($0.id)|\($0.distance)" } }

@Suite struct TopKMergeTests {
    @Test func mergesTiesByIdAndDropsDuplicates() {
        let a = [Hit(id: "b", distance: 0.1), Hit(id: "x", distance: 0.2), Hit(id: "d", distance: 0.5)]
        let b = [Hit(id: "a", distance: 0.1), Hit(id: "x", distance: 0.3), Hit(id: "c", distance: 0.4)]
        let merged = TopKMerge.merge([a, b], k: 10)
        #expect(merged.map(\.id) == ["a", "b", "x", "c", "d"])
        #expect(merged[2].distance == 0.2)  // the better copy of "x"
    }

    @Test func offsetSkipsUniqueHits() {
        let a = [Hit(id: "a", distance: 1), Hit(id: "c", distance: 3)]
        let b = [Hit(id: "a", distance: 1), Hit(id: "b", distance: 2), Hit(id: "d", distance: 4)]
        #expect(TopKMerge.merge([a, b], k: 2, offset: 1).map(\.id) == ["b", "c"])
        #expect(TopKMerge.merge([a, b], k: 10, offset: 3).map(\.id) == ["d"])
        #expect(TopKMerge.merge([a, b], k: 10, offset: 9).isEmpty)
        #expect(TopKMerge.merge([a, b], k: 0).isEmpty)
    }

    @Test func emptyInputs() {
        #expect(TopKMerge.merge([[Hit]](), k: 5).isEmpty)
        #expect(TopKMerge.merge([[], [Hit(id: "a", distance: 0)], []], k: 5).map(\.id) == ["a"])
    }

    @Test func idsCompareByUTF8Bytes() {
        // Canonically equivalent ids are different points; byte order breaks the tie.
        let composed = Hit(id: "caf\u{e9}", distance: 1), decomposed = Hit(id: "cafe\u{301}", distance: 1)
        let merged = TopKMerge.merge([[composed], [decomposed]], k: 10)
        #expect(merged.count == 2)
        #expect(merged.map { Array($0.id.utf8) } == [Array("cafe\u{301}".utf8), Array("caf\u{e9}".utf8)])
    }

    @Test func nanSortsLast() {
        let merged = TopKMerge.merge([[Hit(id: "a", distance: 1), Hit(id: "n", distance: .nan)], [Hit(id: "b", distance: 2)]], k: 3)
        #expect(merged.map(\.id) == ["a", "b", "n"])
    }

    @Test func worksOnProtoScoredPoints() {
        func point(_ id: String, _ d: Float) -> Shoal_V1_ScoredPoint {
            var p = Shoal_V1_ScoredPoint()
            p.id = id
            p.distance = d
            p.score = 1 - d
            return p
        }
        let merged = TopKMerge.merge([[point("a", 0.2), point("c", 0.9)], [point("b", 0.1), point("a", 0.2)]], k: 2)
        #expect(merged.map(\.id) == ["b", "a"])
    }

    /// Random shard lists (few distinct distances and a small id pool, so
    /// ties and cross-shard duplicates are common) against the sort-based oracle.
    @Test func matchesSortOracle() {
        var rng = SplitMix64(seed: 7)
        for round in 0..<2000 {
            let shards = Int.random(in: 0...8, using: &rng)
            let pool = Int.random(in: 1...60, using: &rng)
            var lists: [[Hit]] = []
            for s in 0..<shards {
                var used = Set<String>()
                var list: [Hit] = []
                for _ in 0..<Int.random(in: 0...25, using: &rng) {
                    let id = "p\(Int.random(in: 0..<pool, using: &rng))"
                    guard used.insert(id).inserted else { continue }  // unique within one shard
                    list.append(Hit(id: id, distance: Float(Int.random(in: 0...6, using: &rng)) / 4, shard: s))
                }
                lists.append(list.sorted { TopKMerge.precedes($0, $1) })
            }
            let k = Int.random(in: 0...30, using: &rng), offset = Int.random(in: 0...10, using: &rng)
            let merged = TopKMerge.merge(lists, k: k, offset: offset)
            #expect(keys(merged) == keys(oracle(lists, k: k, offset: offset)), "round \(round)")
            #expect(TopKMerge.isSorted(merged))
        }
    }
}
