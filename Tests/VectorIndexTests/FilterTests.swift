import Testing
import VectorCore
@testable import VectorIndex

@Suite struct FilterTests {
    static let data = Dataset(n: 4000, dimension: 32, seed: 5)
    static let index = try! data.build(metric: .l2)

    /// A deterministic attribute per id, so `attr < s * 1000` keeps a share `s` of the points.
    static func attribute(_ id: UInt32) -> UInt32 {
        var z = UInt64(id) &* 0x9E37_79B9_7F4A_7C15
        z ^= z >> 31
        return UInt32(truncatingIfNeeded: (z &* 0xBF58_476D_1CE4_E5B9) >> 40) % 1000
    }

    static func matching(_ s: Double) -> (ids: [UInt32], predicate: (UInt32) -> Bool) {
        let threshold = UInt32(s * 1000)
        let predicate: (UInt32) -> Bool = { attribute($0) < threshold }
        return ((0..<4000).map(UInt32.init).filter(predicate), predicate)
    }

    @Test(arguments: [0.5, 0.1, 0.01, 0.001])
    func plannedFilteredSearch(selectivity: Double) throws {
        let (ids, predicate) = Self.matching(selectivity)
        let filter = SearchFilter(estimatedMatches: ids.count, predicate)
        let approx = try Self.data.queries.map { try Self.index.search(query: $0, k: 10, ef: 64, filter: filter) }
        let exact = try Self.data.queries.map { try Self.index.exactSearch(query: $0, k: 10, ids: ids) }
        #expect(approx.allSatisfy { $0.hits.allSatisfy { predicate($0.id) } })
        #expect(approx.allSatisfy { $0.hits.count == min(10, ids.count) })
        #expect(recall(approx, exact) >= 0.95, "selectivity \(selectivity)")
        if selectivity <= 0.01 { #expect(approx.allSatisfy { $0.strategy == .exactFiltered }) }
    }

    @Test(arguments: [0.5, 0.1, 0.01, 0.001])
    func graphWalkWithPredicate(selectivity: Double) throws {
        // The graph walk alone, predicate evaluated in the walk: filtered-out points are stepping stones only.
        let (ids, predicate) = Self.matching(selectivity)
        let approx = try Self.data.queries.map { try Self.index.graphSearch(query: $0, k: 10, ef: 64, filter: predicate) }
        let exact = try Self.data.queries.map { try Self.index.exactSearch(query: $0, k: 10, ids: ids) }
        #expect(approx.allSatisfy { $0.strategy == .graphFiltered && $0.hits.allSatisfy { predicate($0.id) } })
        #expect(recall(approx, exact) >= 0.95, "selectivity \(selectivity)")
    }

    @Test func plannerPrefersExactForSelectiveFiltersAndSmallCollections() throws {
        let always: (UInt32) -> Bool = { _ in true }
        #expect(Self.index.plan(k: 10, ef: 64, filter: SearchFilter(estimatedMatches: 20, always)) == .exactFiltered)
        #expect(Self.index.plan(k: 10, ef: 64, filter: SearchFilter(always)) == .graphFiltered)
        let tiny = try Dataset(n: 50, dimension: 8).build(metric: .l2)
        #expect(tiny.plan(k: 10, ef: 64, filter: nil) == .exact)
        // Exact's cost grows with the matches, the walk's with ef ÷ selectivity.
        #expect(Self.index.plan(k: 10, ef: 10, filter: SearchFilter(estimatedMatches: 4000, always)) == .graphFiltered)
    }
}
