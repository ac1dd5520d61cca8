import Testing
import VectorCore

/// Every way `Filter.validate()` rejects a filter, with the message checked:
/// the code is INVALID_ARGUMENT and the message names the place in the tree.
@Suite struct FilterValidationTests {
    /// The validation error's message; records an issue if it did not fail
    /// with INVALID_ARGUMENT.
    static func message(_ filter: Filter) -> String {
        do throws(ShoalError) {
            try filter.validate(limits: RequestLimits())
            Issue.record("expected \(filter) to be rejected")
            return ""
        } catch {
            #expect(error.code == .invalidArgument)
            return error.message
        }
    }

    static func nested(_ depth: Int) -> Filter {
        var f = Filter.field("x", .eq(1))
        for _ in 1..<depth { f = .not(f) }
        return f
    }

    @Test func acceptsWellFormedFilters() throws {
        let ok: [Filter] = [
            .field("price", .between(1, 2.5)),
            .field("price", .range(lower: .init(1, inclusive: false), upper: .init(1, inclusive: true))),
            .and([.field("tags", .in(["a", "b"])), .not(.field("n", .notIn([1, 2.5])))]),
            .or([.field("x", .exists(false)), .field("y", .ne(true))]),
            Self.nested(RequestLimits().maxFilterDepth),
            .or((0..<RequestLimits().maxFilterConditions).map { .field("f\($0)", .eq(.int(Int64($0)))) }),
        ]
        for f in ok { try f.validate(limits: RequestLimits()) }
    }

    @Test func emptyFieldName() {
        let m = Self.message(.and([.field("a", .eq(1)), .field("", .eq(1))]))
        #expect(m == "invalid filter at filter.all_of[1]: field name must not be empty")
    }

    @Test func overlongFieldName() {
        let m = Self.message(.field(String(repeating: "k", count: 300), .exists(true)))
        #expect(m.hasPrefix("invalid filter at filter: field name \"kkkk"))
        #expect(m.hasSuffix("is 300 bytes; the limit is 256 (--max-field-name-bytes)"))
    }

    @Test func emptyAndOrLists() {
        #expect(Self.message(.and([])) == "invalid filter at filter: all_of needs at least one filter")
        #expect(Self.message(.not(.or([]))) == "invalid filter at filter.negate: any_of needs at least one filter")
    }

    @Test func rangeWithoutBounds() {
        #expect(Self.message(.field("price", .range(lower: nil, upper: nil)))
            == #"invalid filter at filter (field "price"): range needs at least one bound (gt, gte, lt or lte)"#)
    }

    @Test func rangeWithNonNumericBound() {
        #expect(Self.message(.or([.field("a", .eq(1)), .field("price", .gte("10"))]))
            == #"invalid filter at filter.any_of[1] (field "price"): range lower bound must be a number (int or double), got string "10""#)
        #expect(Self.message(.field("price", .lt(true)))
            == #"invalid filter at filter (field "price"): range upper bound must be a number (int or double), got bool true"#)
    }

    @Test func rangeWithNaNOrInfiniteBound() {
        #expect(Self.message(.field("price", .gte(.double(.nan))))
            == #"invalid filter at filter (field "price"): range lower bound must be finite, got nan"#)
        #expect(Self.message(.field("price", .lte(.double(.infinity))))
            == #"invalid filter at filter (field "price"): range upper bound must be finite, got inf"#)
    }

    @Test func rangeWithLowerAboveUpper() {
        #expect(Self.message(.field("price", .between(10, 5)))
            == #"invalid filter at filter (field "price"): range lower bound 10 is greater than upper bound 5, so nothing can match"#)
        // Compared exactly across kinds: 2^53 + 1 > 2^53.
        #expect(Self.message(.field("n", .between(.int((1 << 53) + 1), .double(0x1p53)))).contains("is greater than upper bound"))
    }

    @Test func inWithEmptyOrMixedList() {
        #expect(Self.message(.field("color", .in([])))
            == #"invalid filter at filter (field "color"): in needs at least one value"#)
        #expect(Self.message(.field("color", .notIn([])))
            == #"invalid filter at filter (field "color"): not_in needs at least one value"#)
        #expect(Self.message(.field("color", .in(["red", 1])))
            == #"invalid filter at filter (field "color"): in mixes value kinds (string at [0], number at [1]); use values of one kind"#)
        #expect(Self.message(.field("color", .notIn([true, "x"]))).contains("not_in mixes value kinds (bool at [0], string at [1])"))
    }

    @Test func operandsMustBeValidScalars() {
        #expect(Self.message(.field("tags", .eq(["a", "b"]))).hasPrefix(
            #"invalid filter at filter (field "tags"): eq takes one value, not a string list"#))
        #expect(Self.message(.field("tags", .in(["a", .stringList(["b"])]))).hasPrefix(
            #"invalid filter at filter (field "tags"): in[1] takes one value, not a string list"#))
        #expect(Self.message(.field("x", .ne(.double(-.infinity))))
            == #"invalid filter at filter (field "x"): ne operand: double value must be finite, got -inf"#)
        #expect(Self.message(.field("x", .eq(.string(String(repeating: "a", count: 70_000)))))
            == #"invalid filter at filter (field "x"): eq operand: string is 70000 bytes; the limit is 65536 (--max-string-bytes)"#)
    }

    @Test func tooDeep() {
        let m = Self.message(Self.nested(RequestLimits().maxFilterDepth + 1))
        #expect(m.hasPrefix("invalid filter: nesting is deeper than 32 levels (--max-filter-depth) at filter.negate.negate"))
        #expect(m.hasSuffix("; flatten nested all_of/any_of lists"))
    }

    @Test func tooManyConditions() {
        let f = Filter.and([
            .field("a", .eq(1)),
            .or((0..<RequestLimits().maxFilterConditions).map { .field("f\($0)", .eq(1)) }),
        ])
        #expect(Self.message(f)
            == "invalid filter: more than 1024 conditions (--max-filter-conditions; the limit is reached at filter.all_of[1].any_of[1023]); use in/not_in for long lists of values")
    }
}

@Suite struct MetadataValidationTests {
    static func message(_ m: Metadata) -> String {
        do throws(ShoalError) {
            try m.validateMetadata(limits: RequestLimits())
            Issue.record("expected \(m) to be rejected")
            return ""
        } catch {
            #expect(error.code == .invalidArgument)
            return error.message
        }
    }

    @Test func acceptsOrdinaryMetadata() throws {
        let m: Metadata = ["price": 9.5, "count": 3, "name": "x", "ok": true, "tags": ["a", ""], "empty": []]
        try m.validateMetadata(limits: RequestLimits())
    }

    @Test func rejectsBadKeysAndValues() {
        #expect(Self.message(["": 1]) == "metadata field name must not be empty")
        #expect(Self.message([String(repeating: "é", count: 129): 1]).hasSuffix("is 258 bytes; the limit is 256 (--max-field-name-bytes)"))
        #expect(Self.message(["price": .double(.nan)]) == #"metadata field "price": double value must be finite, got nan"#)
        #expect(Self.message(["note": .string(String(repeating: "a", count: 65_537))])
            == #"metadata field "note": string is 65537 bytes; the limit is 65536 (--max-string-bytes)"#)
        #expect(Self.message(["tags": .stringList(["ok", String(repeating: "a", count: 65_537)])])
            == #"metadata field "tags"[1]: string is 65537 bytes; the limit is 65536 (--max-string-bytes)"#)
        #expect(Self.message(["tags": .stringList(Array(repeating: "a", count: 4_097))])
            == #"metadata field "tags": string list has 4097 elements; the limit is 4096 (--max-list-elements)"#)
    }

    @Test func reportsTheFirstFieldByName() {
        // Deterministic although dictionaries iterate in a per-process order.
        #expect(Self.message(["b": .double(.infinity), "a": .double(.nan)]).hasPrefix(#"metadata field "a""#))
    }
}
