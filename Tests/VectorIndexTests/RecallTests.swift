import Testing
import VectorCore
@testable import VectorIndex

@Suite struct RecallTests {
    static let data = Dataset(n: 3000, dimension: 32)

    @Test(arguments: Metric.allCases)
    func graphRecallAgainstExact(metric: Metric) throws {
        let index = try Self.data.build(metric: metric)
        #expect(index.count == 3000)
        index._checkInvariants()
        let approx = try Self.data.queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let exact = try Self.data.queries.map { try index.exactSearch(query: $0, k: 10) }
        #expect(approx.allSatisfy { $0.strategy == .graph && $0.hits.count == 10 })
        let r = recall(approx, exact)
        #expect(r >= 0.95, "recall@10 \(r) for \(metric)")
    }

    @Test func hitsAreSortedAndScoresFollowMetric() throws {
        let index = try Self.data.build(metric: .cosine)
        let q = Self.data.queries[0]
        let result = try index.search(query: q, k: 10, ef: 64)
        #expect(zip(result.hits, result.hits.dropFirst()).allSatisfy { $0.distance <= $1.distance })
        // Cosine: distance = 1 − cos; the user-facing score is the cosine similarity.
        let top = result.hits[0]
        let p = Self.data.points[Int(top.id)]
        let dot = zip(p, q).map(*).reduce(0, +)
        let norms = (p.map { $0 * $0 }.reduce(0, +) * q.map { $0 * $0 }.reduce(0, +)).squareRoot()
        #expect(abs(Metric.cosine.score(distance: top.distance) - dot / norms) < 1e-4)
    }

    @Test func idsNeedNotBeOffsets() throws {
        // Sparse internal ids (as a shard hands out after deletes): results come back under those ids.
        let index = try Self.data.build(metric: .l2, ids: { UInt32($0 * 3 + 7) })
        let approx = try Self.data.queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let exact = try Self.data.queries.map { try index.exactSearch(query: $0, k: 10) }
        #expect(recall(approx, exact) >= 0.95)
        #expect(approx.allSatisfy { $0.hits.allSatisfy { ($0.id - 7) % 3 == 0 } })
    }

    @Test func multiThreadedBuildReachesRecall() throws {
        let d = Self.data
        let index = try HNSWIndex(dimension: d.dimension, metric: .l2, params: HNSWParameters(m: 12, efConstruction: 100), capacity: 4000)
        let flat = d.points.flatMap { $0 }
        try flat.withUnsafeBufferPointer { try index.insert(contentsOf: $0, threads: 4) }
        #expect(index.count == d.points.count)
        let approx = try d.queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let exact = try d.queries.map { try index.exactSearch(query: $0, k: 10) }
        #expect(recall(approx, exact) >= 0.95)
    }

    @Test func seededBuildsAreReproducible() throws {
        let d = Dataset(n: 500, dimension: 16)
        let a = try d.build(metric: .l2), b = try d.build(metric: .l2)
        #expect(a.serialize() == b.serialize())
    }

    @Test func rejectsBadInput() throws {
        let index = try HNSWIndex(dimension: 4, metric: .l2, capacity: 10)
        #expect(throws: IndexError.dimensionMismatch(expected: 4, got: 3)) { try index.insert(id: 0, vector: [1, 2, 3]) }
        #expect(throws: IndexError.nonFiniteValue) { try index.insert(id: 0, vector: [1, .nan, 3, 4]) }
        #expect(throws: IndexError.idOutOfRange(id: 10, capacity: 10)) { try index.insert(id: 10, vector: [1, 2, 3, 4]) }
        #expect(try index.search(query: [1, 2, 3, 4], k: 5).hits.isEmpty)
    }
}

@Suite struct KernelTests {
    @Test func simdMatchesScalarReference() throws {
        var rng = SeededRandom(seed: 7)
        for n in [1, 3, 7, 8, 9, 16, 31, 32, 33, 64, 100, 128, 257, 512] {
            let a = (0..<n).map { _ in rng.gaussian() }, b = (0..<n).map { _ in rng.gaussian() }
            for metric in Metric.allCases {
                let fast = try HNSWIndex(dimension: n, metric: metric, params: HNSWParameters(allowSIMD: true), capacity: 1)
                let slow = try HNSWIndex(dimension: n, metric: metric, params: HNSWParameters(allowSIMD: false), capacity: 1)
                let x = fast.distance(between: a, and: b), y = slow.distance(between: a, and: b)
                #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "n=\(n) \(metric): \(x) vs \(y)")
            }
        }
    }

    @Test func int8KernelMatchesScalarReference() {
        var rng = SeededRandom(seed: 8)
        for n in [32, 64, 96, 128, 512, 33, 70] {
            let a = (0..<n).map { _ in Int8.random(in: -127...127, using: &rng) }
            let b = (0..<n).map { _ in Int8.random(in: -127...127, using: &rng) }
            let exact = zip(a, b).map { Int32($0) * Int32($1) }.reduce(0, +)
            #expect(HNSWIndex._dotInt8(a, b, simd: true) == exact)
            #expect(HNSWIndex._dotInt8(a, b, simd: false) == exact)
        }
    }

    @Test(arguments: Metric.allCases)
    func quantizedExactAndWalkReachRecall(metric: Metric) throws {
        // The int8 copy: exact scans rank by codes then re-rank; walks on codes re-rank their ef survivors.
        let d = Dataset(n: 3000, dimension: 32, seed: 77)
        let params = HNSWParameters(m: 12, efConstruction: 100, quantizedScan: true, quantizedTraversal: true)
        let index = try d.build(metric: metric, params: params)
        let plain = try d.build(metric: metric)
        let scanned = try d.queries.map { try index.exactSearch(query: $0, k: 10) }
        let walked = try d.queries.map { try index.graphSearch(query: $0, k: 10, ef: 64) }
        let truth = try d.queries.map { try plain.exactSearch(query: $0, k: 10) }
        #expect(recall(scanned, truth) >= 0.99)
        #expect(recall(walked, truth) >= 0.95)
        let loaded = try HNSWIndex(image: index.serialize())
        #expect(try d.queries.map { try loaded.exactSearch(query: $0, k: 10).hits } == scanned.map(\.hits))
    }

    @Test func heapKeepsOrder() {
        var heap = PairHeap(capacity: 4)
        defer { heap.free() }
        var rng = SeededRandom(seed: 3)
        for i in 0..<1000 { heap.push(Float.random(in: 0..<1, using: &rng), UInt32(i)) }
        heap._checkInvariants()
        var last = Float.infinity
        while !heap.isEmpty {
            #expect(heap.topKey <= last)
            last = heap.topKey
            heap.pop()
        }
    }
}
