import Testing
import VectorCore

/// PayloadIndex.evaluate against the brute-force oracle `Filter.matches` over
/// every live point, with fixed seeds.
@Suite struct PayloadIndexPropertyTests {
    /// The ids the oracle accepts among the live points of `model`.
    static func oracle(_ filter: Filter, _ model: [UInt32: Metadata]) -> IdSet {
        IdSet(model.filter { filter.matches($0.value) }.keys)
    }

    /// Runs `filters` random filters; records the first few mismatches.
    static func checkFilters(_ index: PayloadIndex, _ model: [UInt32: Metadata], filters: Int, _ g: inout SplitMix64) {
        var failures = 0
        for _ in 0..<filters {
            let filter = PayloadGen.filter(&g)
            let got = index.evaluate(filter)
            let want = oracle(filter, model)
            got._checkInvariants()
            if got != want {
                failures += 1
                if failures <= 3 {
                    Issue.record("filter \(filter): index \(got), oracle \(want)")
                }
            }
            let estimate = index.estimate(filter)
            #expect((0...model.count).contains(estimate), "estimate \(estimate) out of range for \(filter)")
        }
        #expect(failures == 0)
    }

    @Test(arguments: [1 as UInt64, 2, 3])
    func evaluateEqualsOracleThroughUpdates(seed: UInt64) {
        var g = SplitMix64(seed: seed)
        let index = PayloadIndex()
        var model: [UInt32: Metadata] = [:]
        // Ids are not 0..<n: gaps, like internal ids after deletes.
        for id in stride(from: UInt32(0), to: 2_600, by: 1) where g.chance(0.8) {
            let m = PayloadGen.metadata(&g)
            index.set(id, m)
            model[id] = m
        }
        #expect(index.count == model.count)
        index._checkInvariants()
        Self.checkFilters(index, model, filters: 300, &g)

        for round in 0..<3 {
            for _ in 0..<400 {
                let id = UInt32.random(in: 0..<3_000, using: &g)
                if g.chance(0.4) {
                    index.remove(id)
                    model[id] = nil
                } else if g.chance(0.5), var m = model[id] {
                    // Change one field only: the incremental path.
                    let f = g.pick(PayloadGen.fields.dropLast().map { $0 })
                    m[f] = g.chance(0.2) ? nil : PayloadGen.value(for: f, &g)
                    index.set(id, m)
                    model[id] = m
                } else {
                    let m = PayloadGen.metadata(&g)
                    index.set(id, m)
                    model[id] = m
                }
            }
            index._checkInvariants()
            #expect(index.count == model.count, "round \(round)")
            #expect(index.liveIds == IdSet(model.keys))
            Self.checkFilters(index, model, filters: 150, &g)
        }
    }

    /// Dense fields (a bitmap-sized universe) exercise the bitmap paths of
    /// postings, `not` and range collection.
    @Test func denseUniverseUsesBitmapsAndStaysExact() {
        var g = SplitMix64(seed: 42)
        let index = PayloadIndex()
        var model: [UInt32: Metadata] = [:]
        for id in UInt32(0)..<5_000 {
            var m: Metadata = ["i": .int(Int64(id % 10)), "d": .double(Double(id % 100) / 4)]
            if id % 3 == 0 { m["tags"] = .stringList(["x", id % 2 == 0 ? "even" : "odd"]) }
            index.set(id, m)
            model[id] = m
        }
        let all = index.evaluate(.field("i", .gte(0)))
        #expect(all.isBitmap)
        #expect(all.count == 5_000)
        Self.checkFilters(index, model, filters: 100, &g)
        let fixed: [Filter] = [
            .field("i", .eq(3)),
            .not(.field("i", .eq(3))),
            .field("d", .between(1, 20)),
            .and([.field("d", .lt(20.5)), .field("tags", .eq("even")), .field("i", .ne(4))]),
            .or([.field("tags", .in(["odd", "nope"])), .field("i", .range(lower: .init(7, inclusive: false), upper: nil))]),
            // 50 candidates against a child estimated at ~4,000: tested point by point.
            .and([.field("d", .eq(0.25)), .not(.field("tags", .eq("odd")))]),
        ]
        for f in fixed {
            #expect(index.evaluate(f) == Self.oracle(f, model), "\(f)")
        }
        // Remove all but 25 points: sets shrink back to sorted arrays.
        for id in UInt32(0)..<5_000 where id % 200 != 0 {
            index.remove(id)
            model[id] = nil
        }
        index._checkInvariants()
        #expect(!index.liveIds.isBitmap)
        for f in fixed {
            #expect(index.evaluate(f) == Self.oracle(f, model), "\(f)")
        }
        Self.checkFilters(index, model, filters: 100, &g)
    }

    @Test func leafEstimatesAreExact() {
        var g = SplitMix64(seed: 7)
        let index = PayloadIndex()
        var model: [UInt32: Metadata] = [:]
        for id in UInt32(0)..<1_000 {
            let m = PayloadGen.metadata(&g)
            index.set(id, m)
            model[id] = m
        }
        for _ in 0..<300 {
            let f = PayloadGen.fields.randomElement(using: &g)!
            let filter = Filter.field(f, PayloadGen.condition(for: f, &g))
            let exact = Self.oracle(filter, model).count
            let estimate = index.estimate(filter)
            switch filter {
            case .condition(_, .in):  // may count a point once per matching value
                #expect(estimate >= exact, "\(filter)")
            case .condition(_, .notIn):
                #expect(estimate <= exact, "\(filter)")
            default:
                #expect(estimate == exact, "\(filter)")
            }
        }
    }
}
