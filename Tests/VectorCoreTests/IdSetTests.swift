import Testing
import VectorCore

/// IdSet against `Set<UInt32>` over sparse and dense random sets, so both
/// representations and every pairing of them are exercised.
@Suite struct IdSetTests {
    /// A random set: `n` ids below `bound`.
    static func random(_ n: Int, below bound: UInt32, _ g: inout SplitMix64) -> Set<UInt32> {
        Set((0..<n).map { _ in UInt32.random(in: 0..<bound, using: &g) })
    }

    static func check(_ s: IdSet, _ model: Set<UInt32>, _ context: String) {
        s._checkInvariants()
        #expect(s.count == model.count, "\(context)")
        #expect(s.sortedIds == model.sorted(), "\(context)")
        #expect(Array(s) == model.sorted(), "\(context): iterator")
    }

    @Test func algebraMatchesSetModel() {
        var g = SplitMix64(seed: 11)
        let shapes: [(Int, UInt32)] = [(0, 10), (5, 100), (50, 100_000), (3_000, 4_000), (20_000, 30_000), (100, 10_000)]
        for (n1, b1) in shapes {
            for (n2, b2) in shapes {
                let m1 = Self.random(n1, below: b1, &g)
                let m2 = Self.random(n2, below: b2, &g)
                let s1 = IdSet(m1)
                let s2 = IdSet(m2)
                let ctx = "\(n1)/\(b1) vs \(n2)/\(b2)"
                Self.check(s1.intersection(s2), m1.intersection(m2), "∩ " + ctx)
                Self.check(s1.union(s2), m1.union(m2), "∪ " + ctx)
                Self.check(s1.subtracting(s2), m1.subtracting(m2), "− " + ctx)
                Self.check(s1.filter { $0 % 3 == 0 }, m1.filter { $0 % 3 == 0 }, "filter " + ctx)
                #expect(s1.bitmapped() == s1)
                for probe in m2.prefix(50) {
                    #expect(s1.contains(probe) == m1.contains(probe))
                }
            }
        }
    }

    @Test func unionOfMany() {
        var g = SplitMix64(seed: 12)
        for (parts, n, bound) in [(10, 20, UInt32(1_000_000)), (30, 500, UInt32(5_000)), (3, 0, UInt32(10))] {
            let models = (0..<parts).map { _ in Self.random(n, below: bound, &g) }
            let union = IdSet.union(of: models.map { IdSet($0) })
            Self.check(union, models.reduce(into: Set()) { $0.formUnion($1) }, "union of \(parts)×\(n)")
        }
    }

    @Test func insertAndRemoveSwitchRepresentations() {
        var g = SplitMix64(seed: 13)
        var s = IdSet()
        var model = Set<UInt32>()
        // Grow dense (becomes a bitmap), then shrink (back to a sorted array).
        for id in UInt32(0)..<2_000 {
            #expect(s.insert(id) == model.insert(id).inserted)
        }
        #expect(s.isBitmap)
        for _ in 0..<3_000 {
            let id = UInt32.random(in: 0..<2_500, using: &g)
            if g.chance(0.7) {
                #expect(s.remove(id) == (model.remove(id) != nil))
            } else {
                #expect(s.insert(id) == model.insert(id).inserted)
            }
        }
        Self.check(s, model, "after churn")
        for id in model { s.remove(id) }
        #expect(s.isEmpty)
        #expect(!s.isBitmap)
        #expect(s == IdSet())
    }

    @Test func outOfOrderInsertsStaySorted() {
        var s = IdSet()
        for id: UInt32 in [9, 3, 7, 3, 1_000_000, 0] { s.insert(id) }
        #expect(s.sortedIds == [0, 3, 7, 9, 1_000_000])
        #expect(!s.contains(8))
        #expect(s.description == "IdSet(5: [0, 3, 7, 9, 1000000])")
    }
}
