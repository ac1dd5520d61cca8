import Testing

@testable import VectorCore

/// Vectors at float32's extremes get a clear status or a usable value, never an overflow.
@Suite struct PointValidationTests {
    @Test func cosineNormalisesHugeAndSubnormalVectors() throws {
        for x in [Float(1e38), Float.greatestFiniteMagnitude, Float.leastNonzeroMagnitude, Float(1e-40)] {
            let unit = try PointValidation.validateVector([x, -x, x, 0], dimension: 4, metric: .cosine, at: "v")
            let norm = unit.reduce(0) { $0 + $1 * $1 }
            #expect(abs(norm - 1) < 1e-5, "x = \(x)")
            #expect(unit.allSatisfy { $0.isFinite })
        }
    }

    @Test func l2AndIpRefuseVectorsWhoseDistancesWouldOverflow() throws {
        for metric in [Metric.l2, .innerProduct] {
            #expect(throws: ShoalError.self) { try PointValidation.validateVector([1e38, 0], dimension: 2, metric: metric, at: "v") }
            // Just below the bound: accepted, and any two such vectors have a finite distance.
            let edge = Float((PointValidation.maxSquaredNorm / 2).squareRoot() * 0.999)
            let v = try PointValidation.validateVector([edge, edge], dimension: 2, metric: metric, at: "v")
            let twice: Float = v[0] + v[0]
            let d: Float = twice * twice + twice * twice
            #expect(d.isFinite)
        }
    }

    @Test func zeroAndNonFiniteVectorsAreRefused() {
        #expect(throws: ShoalError.self) { try PointValidation.validateVector([0, 0], dimension: 2, metric: .cosine, at: "v") }
        #expect(throws: ShoalError.self) { try PointValidation.validateVector([.nan, 0], dimension: 2, metric: .l2, at: "v") }
        #expect(throws: ShoalError.self) { try PointValidation.validateVector([.infinity, 0], dimension: 2, metric: .innerProduct, at: "v") }
        #expect(throws: ShoalError.self) { try PointValidation.validateVector([1], dimension: 2, metric: .innerProduct, at: "v") }
    }
}
