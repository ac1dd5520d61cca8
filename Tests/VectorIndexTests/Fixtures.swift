import Foundation
import VectorCore
@testable import VectorIndex

/// The tests' seeded generator (VectorCore's SplitMix64) with a Gaussian draw.
typealias SeededRandom = SplitMix64

extension SplitMix64 {
    mutating func gaussian() -> Float {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self), v = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
    }
}

/// Clustered Gaussian data: `n` points around `clusters` centres, plus queries drawn the same way.
struct Dataset {
    let dimension: Int
    let points: [[Float]]
    let queries: [[Float]]

    init(n: Int, dimension: Int, queries q: Int = 50, clusters: Int = 20, seed: UInt64 = 42) {
        var rng = SeededRandom(seed: seed)
        let centres = (0..<clusters).map { _ in (0..<dimension).map { _ in rng.gaussian() * 3 } }
        func draw() -> [Float] {
            let c = centres[Int.random(in: 0..<clusters, using: &rng)]
            return c.map { $0 + rng.gaussian() }
        }
        self.dimension = dimension
        points = (0..<n).map { _ in draw() }
        queries = (0..<q).map { _ in draw() }
    }

    func build(metric: Metric, params: HNSWParameters = HNSWParameters(m: 12, efConstruction: 100), ids: ((Int) -> UInt32)? = nil,
               capacity: Int? = nil) throws -> HNSWIndex {
        let index = try HNSWIndex(dimension: dimension, metric: metric, params: params, capacity: capacity ?? points.count * 4)
        for (i, p) in points.enumerated() { try index.insert(id: ids?(i) ?? UInt32(i), vector: p) }
        return index
    }
}

/// Mean share of the exact result's ids found by the approximate result (recall@k against an oracle).
func recall(_ approx: [SearchResult], _ exact: [SearchResult]) -> Double {
    var found = 0, total = 0
    for (a, e) in zip(approx, exact) {
        let truth = Set(e.hits.map(\.id))
        found += a.hits.filter { truth.contains($0.id) }.count
        total += truth.count
    }
    return total == 0 ? 1 : Double(found) / Double(total)
}
