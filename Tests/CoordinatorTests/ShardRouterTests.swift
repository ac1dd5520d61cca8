import VectorCore
import Coordinator
import Testing

@Suite struct ShardRouterTests {
    /// Published FNV-1a 64 test vectors (Fowler/Noll/Vo, `test_fnv.c`'s
    /// fnv1a_64 table, and the IETF draft draft-eastlake-fnv).
    @Test(arguments: [
        ("", 0xcbf2_9ce4_8422_2325 as UInt64),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("b", 0xaf63_df4c_8601_f1a5),
        ("c", 0xaf63_de4c_8601_eff2),
        ("foo", 0xdcb2_7518_fed9_d577),
        ("foobar", 0x8594_4171_f739_67e8),
    ])
    func publishedVectors(input: String, expected: UInt64) {
        #expect(FNV1a64.hash(input) == expected)
        #expect(FNV1a64.hash(Array(input.utf8)) == expected)
    }

    @Test func hashesBytesNotCanonicalStrings() {
        // Canonically equivalent but different bytes: different ids.
        let composed = "caf\u{e9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // Swift's String equality normalizes
        #expect(FNV1a64.hash(composed) != FNV1a64.hash(decomposed))
    }

    @Test func shardIsHashModCount() {
        let router = ShardRouter(shardCount: 6)
        for id in ["", "a", "foobar", "point-17", "日本語"] {
            #expect(router.shard(for: id) == UInt32(FNV1a64.hash(id) % 6))
        }
        #expect(ShardRouter(shardCount: 1).shard(for: "anything") == 0)
    }

    /// 100k ids over 6 shards: chi-square below the 99.9% quantile of the
    /// chi-square distribution with 5 degrees of freedom (20.52), for
    /// sequential ids and for random (seeded) UUID-like ids.
    @Test func evenDistributionOverSixShards() {
        var rng = SplitMix64(seed: 42)
        let sequential = (0..<100_000).map { "id-\($0)" }
        let random = (0..<100_000).map { _ in
            String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16) + "-"
                + String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16)
        }
        for ids in [sequential, random] {
            let router = ShardRouter(shardCount: 6)
            var counts = [Int](repeating: 0, count: 6)
            for id in ids { counts[Int(router.shard(for: id))] += 1 }
            let expected = Double(ids.count) / 6
            let chiSquare = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
            #expect(chiSquare < 20.52, "counts \(counts)")
        }
    }

    @Test func partitionGroupsByShardInOrder() {
        let router = ShardRouter(shardCount: 4)
        let ids = (0..<200).map { "p\($0)" }
        let groups = router.partition(ids) { $0 }
        #expect(groups.count == 4)
        #expect(groups.flatMap { $0 }.sorted() == ids.sorted())
        for (shard, group) in groups.enumerated() {
            #expect(group.allSatisfy { router.shard(for: $0) == UInt32(shard) })
            #expect(group == ids.filter { router.shard(for: $0) == UInt32(shard) })
        }
    }
}
