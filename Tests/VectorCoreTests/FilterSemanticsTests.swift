import Testing
import VectorCore

/// The matching rules documented on `Condition`, checked on the oracle and on
/// the index together.
@Suite struct FilterSemanticsTests {
    static let points: [UInt32: Metadata] = [
        0: ["n": 3, "tags": ["red", "blue"], "name": "alpha"],
        1: ["n": 3.0, "tags": [], "flag": true],
        2: ["n": 3.5, "name": "3"],
        3: ["n": "3", "flag": false],
        4: [:],
        5: ["n": .int((1 << 53) + 1), "tags": ["red"]],
        6: ["n": .double(0x1p53), "name": ["alpha", "beta"]],
        7: ["n": -0.0, "flag": 1],
    ]

    /// The matching ids, after checking that the index agrees with the oracle.
    static func select(_ filter: Filter) -> [UInt32] {
        let index = PayloadIndex()
        for (id, m) in points { index.set(id, m) }
        let oracle = points.filter { filter.matches($0.value) }.keys.sorted()
        let indexed = index.evaluate(filter).sortedIds
        #expect(indexed == oracle, "index and oracle disagree on \(filter)")
        return oracle
    }

    @Test func intAndDoubleCompareByValue() {
        #expect(Self.select(.field("n", .eq(3))) == [0, 1])
        #expect(Self.select(.field("n", .eq(3.0))) == [0, 1])
        #expect(Self.select(.field("n", .eq(0))) == [7])  // -0.0 == 0
        #expect(Self.select(.field("n", .in([3.5, 0]))) == [2, 7])
    }

    @Test func largeIntegersCompareExactly() {
        // 2^53 + 1 is not representable as a double; it must not equal 2^53.
        #expect(Self.select(.field("n", .eq(.double(0x1p53)))) == [6])
        #expect(Self.select(.field("n", .eq(.int(1 << 53)))) == [6])
        #expect(Self.select(.field("n", .gt(.double(0x1p53)))) == [5])
        #expect(Self.select(.field("n", .between(.int(1 << 53), .int((1 << 53) + 1)))) == [5, 6])
    }

    @Test func numbersNeverEqualStringsOrBools() {
        #expect(Self.select(.field("n", .eq("3"))) == [3])
        #expect(Self.select(.field("name", .eq(3))) == [])
        #expect(Self.select(.field("flag", .eq(1))) == [7])
        #expect(Self.select(.field("flag", .eq(true))) == [1])
    }

    @Test func stringListMatchesAnyElement() {
        #expect(Self.select(.field("tags", .eq("red"))) == [0, 5])
        #expect(Self.select(.field("tags", .in(["blue", "green"]))) == [0])
        #expect(Self.select(.field("name", .eq("alpha"))) == [0, 6])  // a plain string and a list element
        // ne: no element equals; an empty list and a missing field both match.
        #expect(Self.select(.field("tags", .ne("red"))) == [1, 2, 3, 4, 6, 7])
        #expect(Self.select(.field("tags", .exists(true))) == [0, 1, 5])
    }

    @Test func neAndNotInMatchMissingFields() {
        #expect(Self.select(.field("name", .ne("alpha"))) == [1, 2, 3, 4, 5, 7])
        #expect(Self.select(.field("nowhere", .ne(1))) == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(Self.select(.field("nowhere", .notIn([1, 2]))) == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(Self.select(.field("nowhere", .eq(1))) == [])
        #expect(Self.select(.field("name", .exists(false))) == [1, 3, 4, 5, 7])
    }

    @Test func rangeMatchesNumbersOnly() {
        #expect(Self.select(.field("n", .gte(3))) == [0, 1, 2, 5, 6])
        #expect(Self.select(.field("n", .range(lower: .init(3, inclusive: false), upper: .init(4, inclusive: true)))) == [2])
        #expect(Self.select(.field("n", .lt(3))) == [7])
        #expect(Self.select(.field("name", .gte(0))) == [])  // strings and lists: no match
        #expect(Self.select(.field("flag", .gte(0))) == [7])  // bools are not numbers
        // not(range) matches the non-numbers and the missing.
        #expect(Self.select(.not(.field("n", .gte(3)))) == [3, 4, 7])
    }

    @Test func typeMismatchesAreFalseNotErrors() {
        // Filters validation would reject still evaluate, to "no match".
        #expect(Self.select(.field("n", .range(lower: .init("a", inclusive: true), upper: nil))) == [])
        #expect(Self.select(.field("n", .eq(.double(.nan)))) == [])
        #expect(Self.select(.field("tags", .eq(["red"]))) == [])
        #expect(Self.select(.and([])) == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(Self.select(.or([])) == [])
    }

    @Test func booleanCombinators() {
        let red = Filter.field("tags", .eq("red"))
        let three = Filter.field("n", .eq(3))
        #expect(Self.select(.and([red, three])) == [0])
        #expect(Self.select(.or([red, three])) == [0, 1, 5])
        #expect(Self.select(.not(.or([red, three]))) == [2, 3, 4, 6, 7])
    }

    @Test func replacingMetadataReindexes() {
        let index = PayloadIndex()
        index.set(1, ["a": 1, "b": "x"])
        index.set(2, ["a": 2])
        index.set(1, ["a": 2.0])
        #expect(index.evaluate(.field("a", .eq(2))).sortedIds == [1, 2])
        #expect(index.evaluate(.field("b", .exists(true))).isEmpty)
        index.remove(2)
        index.remove(2)  // removing twice is harmless
        #expect(index.evaluate(.field("a", .gte(0))).sortedIds == [1])
        #expect(index.evaluate(.not(.field("a", .eq(7)))).sortedIds == [1])
        #expect(index.metadata(of: 1) == ["a": 2.0])
        #expect(index.metadata(of: 2) == nil)
        index._checkInvariants()
    }

    @Test func filtersRenderReadably() {
        let f = Filter.and([.field("price", .gte(10)), .not(.field("tags", .in(["a", "b"])))])
        #expect(f.description == #"all_of(price >= 10, not(tags in ["a", "b"]))"#)
    }
}
