import Testing
import VectorCore
@testable import VectorIndex

@Suite struct MutationTests {
    static let data = Dataset(n: 2000, dimension: 24, seed: 11)

    @Test func deletedPointsAreNeverReturned() throws {
        let index = try Self.data.build(metric: .l2)
        let deleted = Set((0..<2000).filter { $0 % 5 == 0 }.map(UInt32.init))
        for id in deleted { try index.delete(id: id) }
        #expect(index.count == 1600 && index.deletedPoints == 400)
        #expect(throws: IndexError.notFound(id: 0)) { try index.delete(id: 0) }
        // Query with the deleted points' own vectors: the worst case for a tombstone leak.
        let probes = deleted.sorted().prefix(50).map { Self.data.points[Int($0)] } + Self.data.queries
        let approx = try probes.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        #expect(approx.allSatisfy { $0.hits.allSatisfy { !deleted.contains($0.id) } })
        let exact = try probes.map { try index.exactSearch(query: $0, k: 10) }
        #expect(exact.allSatisfy { $0.hits.allSatisfy { !deleted.contains($0.id) } })
        #expect(recall(approx, exact) >= 0.95)

        #expect(index.vacuum() == 400)
        #expect(index.deletedPoints == 0 && index.count == 1600)
        index._checkInvariants()
        let after = try probes.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        #expect(after.allSatisfy { $0.hits.allSatisfy { !deleted.contains($0.id) } })
        #expect(recall(after, exact) >= 0.95)

        // Reclaimed ids can be inserted again.
        for id in deleted { try index.insert(id: id, vector: Self.data.points[Int(id)]) }
        #expect(index.count == 2000)
        index._checkInvariants()
        let full = try Self.data.queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let fullExact = try Self.data.queries.map { try index.exactSearch(query: $0, k: 10) }
        #expect(recall(full, fullExact) >= 0.95)
    }

    @Test func deletingEverythingLeavesAnEmptyIndex() throws {
        let d = Dataset(n: 100, dimension: 8)
        let index = try d.build(metric: .cosine)
        for id in 0..<100 { try index.delete(id: UInt32(id)) }
        #expect(try index.search(query: d.queries[0], k: 5).hits.isEmpty)
        #expect(try index.graphSearch(query: d.queries[0], k: 5, ef: 20).hits.isEmpty)
        #expect(index.vacuum() == 100)
        try index.insert(id: 3, vector: d.points[3])
        #expect(try index.graphSearch(query: d.points[3], k: 1, ef: 20).hits.map(\.id) == [3])
    }

    @Test func updateReinsertsUnderTheSameId() throws {
        let index = try Self.data.build(metric: .l2)
        let target = Self.data.points[1234]
        // Move point 7 onto point 1234's position (nudged): it must now be found there, and not at its old place.
        let moved = target.map { $0 + 0.001 }
        try index.update(id: 7, vector: moved)
        #expect(index.count == 2000 && index.deletedPoints == 0)
        index._checkInvariants()
        let near = try index.graphSearch(query: target, k: 2, ef: 64).hits.map(\.id)
        #expect(Set(near) == [7, 1234])
        let old = try index.graphSearch(query: Self.data.points[7], k: 10, ef: 64).hits.map(\.id)
        #expect(!old.contains(7))
        // insert() on a live id is an update too.
        try index.insert(id: 7, vector: Self.data.points[7])
        #expect(try index.graphSearch(query: Self.data.points[7], k: 1, ef: 64).hits.map(\.id) == [7])
    }
}
