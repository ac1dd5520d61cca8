import Testing
import VectorCore

/// The limits every process shares: `$in` length, metadata size, search shape, HNSW ranges.
@Suite struct RequestLimitsTests {
    static func error(_ body: () throws(ShoalError) -> Void) -> ShoalError? {
        do throws(ShoalError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func inListLengthIsBoundedAndNamed() throws {
        var limits = RequestLimits()
        limits.maxInValues = 10
        let ten = Filter.field("n", .in((0..<10).map { MetadataValue.int(Int64($0)) }))
        try ten.validate(limits: limits)
        for op in [Condition.in, Condition.notIn] {
            let eleven = Filter.and([.field("a", .eq(1)), .field("n", op((0..<11).map { MetadataValue.int(Int64($0)) }))])
            let e = try #require(Self.error { () throws(ShoalError) in try eleven.validate(limits: limits) })
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains("has 11 values; the limit is 10 (--max-in-values)"))
            #expect(e.message.hasPrefix("invalid filter at filter.all_of[1]"))
        }
        // The default: 100,000 values pass, one more does not.
        let big = (0...100_000).map { MetadataValue.int(Int64($0)) }
        try Filter.field("n", .in(Array(big.dropLast()))).validate(limits: RequestLimits())
        #expect(Self.error { () throws(ShoalError) in try Filter.field("n", .in(big)).validate(limits: RequestLimits()) }?.code == .invalidArgument)
    }

    @Test func metadataBytesAreMeasuredAndBounded() throws {
        let m: Metadata = ["ab": "xyz", "n": 5, "ok": true, "tags": ["a", "bc"]]
        // name + 4 + value: (2+4+3) + (1+4+8) + (2+4+1) + (4+4+(1+2)+(2+2))
        #expect(m.measuredBytes == 9 + 13 + 7 + 15)
        var limits = RequestLimits()
        limits.maxMetadataBytes = 44
        try m.validateMetadata(limits: limits)
        limits.maxMetadataBytes = 43
        let e = try #require(Self.error { () throws(ShoalError) in try m.validateMetadata(limits: limits) })
        #expect(e.code == .invalidArgument)
        #expect(e.message == "metadata is 44 bytes; the limit is 43 bytes per point (--max-metadata-bytes)")
        // Two 40 KiB strings: each within the string limit, together over 64 KiB.
        let two: Metadata = ["a": .string(String(repeating: "x", count: 40_000)), "b": .string(String(repeating: "y", count: 40_000))]
        #expect(Self.error { () throws(ShoalError) in try two.validateMetadata(limits: RequestLimits()) }?.message.contains("--max-metadata-bytes") == true)
    }

    @Test func searchShape() throws {
        let limits = RequestLimits()
        try limits.checkSearch(k: 10_000, offset: 0, ef: 0)
        try limits.checkSearch(k: 1, offset: 9_999, ef: 100_000)
        for (k, offset, ef, fragment) in [
            (UInt32(0), UInt32(0), UInt32(0), "k must be 1…10000"), (10_001, 0, 0, "k must be 1…10000"),
            (5_000, 5_001, 0, "offset + k must be at most 10000"), (10, 0, 100_001, "ef must be 1…100000"),
        ] {
            let e = try #require(Self.error { () throws(ShoalError) in try limits.checkSearch(k: k, offset: offset, ef: ef) })
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains(fragment), "\(e.message)")
        }
        let count = try #require(Self.error { () throws(ShoalError) in try limits.checkCount(10_001, "an upsert holds") })
        #expect(count.code == .resourceExhausted)
        #expect(count.message.contains("--max-points-per-request"))
    }

    /// Zeros resolve to the defaults; every value in range is accepted as is; every
    /// value just outside is refused naming the field.
    @Test func hnswRangesAtTheirEdges() throws {
        let d = try RequestLimits.resolveHNSW(m: 0, efConstruction: 0, ef: 0)
        #expect(d == (16, 200, 64))
        for (name, range) in [("hnsw.m", RequestLimits.hnswM), ("hnsw.ef_construction", RequestLimits.hnswEfConstruction), ("hnsw.ef", RequestLimits.hnswEf)] {
            for value in [range.lowerBound, range.lowerBound + 1, range.upperBound - 1, range.upperBound, range.lowerBound - 1, range.upperBound + 1] where value != 0 {
                let args = (m: name == "hnsw.m" ? value : 0, efc: name == "hnsw.ef_construction" ? value : 0, ef: name == "hnsw.ef" ? value : 0)
                let result = Result { () throws(ShoalError) in try RequestLimits.resolveHNSW(m: args.m, efConstruction: args.efc, ef: args.ef) }
                switch result {
                case .success(let r):
                    #expect(range.contains(value))
                    #expect([r.m, r.efConstruction, r.ef].contains(value))
                case .failure(let e):
                    #expect(!range.contains(value))
                    #expect(e.code == .invalidArgument)
                    #expect(e.message == "\(name) must be \(range.lowerBound)…\(range.upperBound), got \(value)")
                }
            }
        }
    }
}
