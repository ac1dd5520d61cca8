import Dispatch
import Testing
import VectorCore
@testable import VectorIndex

@Suite struct ImageTests {
    @Test(arguments: Metric.allCases)
    func roundTripGivesIdenticalResults(metric: Metric) throws {
        let d = Dataset(n: 1500, dimension: 20, seed: 9)
        let index = try d.build(metric: metric)
        for id in stride(from: 0, to: 1500, by: 7) { try index.delete(id: UInt32(id)) }
        let image = index.serialize()
        let loaded = try HNSWIndex(image: image)
        #expect(loaded.serialize() == image)
        #expect(loaded.count == index.count && loaded.deletedPoints == index.deletedPoints)
        #expect(loaded.metric == metric && loaded.dimension == 20 && loaded.params == index.params)
        for q in d.queries {
            #expect(try index.graphSearch(query: q, k: 10, ef: 40).hits == loaded.graphSearch(query: q, k: 10, ef: 40).hits)
            #expect(try index.exactSearch(query: q, k: 10).hits == loaded.exactSearch(query: q, k: 10).hits)
        }
        // The loaded index keeps working: inserts and vacuum.
        try loaded.insert(id: 1600, vector: d.queries[0])
        if metric != .innerProduct {  // under inner product a point need not be its own nearest
            #expect(try loaded.graphSearch(query: d.queries[0], k: 1, ef: 40).hits.first?.id == 1600)
        }
        #expect(loaded.vacuum() == index.deletedPoints)
    }

    @Test func corruptImagesAreRejected() throws {
        let index = try Dataset(n: 200, dimension: 8).build(metric: .l2)
        var image = index.serialize()
        image[image.count / 2] ^= 0x40
        #expect(throws: IndexError.corruptImage("checksum mismatch")) { try HNSWIndex(image: image) }
        #expect(throws: IndexError.self) { try HNSWIndex(image: Array(image.prefix(20))) }
    }
}

/// Concurrent inserts and searches (run under `swift test --sanitize=thread`).
@Suite struct ConcurrencyTests {
    @Test func insertsAndSearchesRunTogether() throws {
        let d = Dataset(n: 2000, dimension: 16, queries: 40, seed: 21)
        let index = try HNSWIndex(dimension: 16, metric: .cosine, params: HNSWParameters(m: 8, efConstruction: 60), capacity: 2048)
        for i in 0..<200 { try index.insert(id: UInt32(i), vector: d.points[i]) }
        let points = d.points, queries = d.queries
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            if worker < 2 {
                // Two inserters split the remaining ids.
                for i in stride(from: 200 + worker, to: 2000, by: 2) { try! index.insert(id: UInt32(i), vector: points[i]) }
            } else {
                // Two searchers, filtered and not, while the graph grows.
                for round in 0..<30 {
                    for q in queries {
                        let r = try! index.graphSearch(query: q, k: 5, ef: 32, filter: round % 2 == 0 ? nil : { $0 % 2 == 0 })
                        precondition(r.hits.count <= 5)
                    }
                }
            }
        }
        #expect(index.count == 2000)
        index._checkInvariants()
        let approx = try queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let exact = try queries.map { try index.exactSearch(query: $0, k: 10) }
        #expect(recall(approx, exact) >= 0.95)
    }

    @Test func deletesAndVacuumRunAlongsideSearches() throws {
        let d = Dataset(n: 1500, dimension: 16, queries: 30, seed: 22)
        let index = try d.build(metric: .l2, params: HNSWParameters(m: 8, efConstruction: 60))
        let queries = d.queries
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            if worker == 0 {
                for id in stride(from: 0, to: 1500, by: 3) { try! index.delete(id: UInt32(id)) }
                index.vacuum()
            } else {
                for _ in 0..<20 {
                    for q in queries { _ = try! index.graphSearch(query: q, k: 5, ef: 32) }
                }
            }
        }
        #expect(index.count == 1000 && index.deletedPoints == 0)
        index._checkInvariants()
        let hits = try queries.flatMap { try index.graphSearch(query: $0, k: 10, ef: 64).hits }
        #expect(hits.allSatisfy { $0.id % 3 != 0 })
    }
}
