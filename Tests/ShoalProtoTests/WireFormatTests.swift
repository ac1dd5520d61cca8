import ShoalProto
import SwiftProtobuf
import Testing

/// Encodes `message` and decodes the bytes back into the same type.
private func roundTrip<M: SwiftProtobuf.Message>(_ message: M) throws -> M {
    let bytes: [UInt8] = try message.serializedBytes()
    return try M(serializedBytes: bytes)
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined()
}

/// A metadata value of each kind.
private func value(_ kind: Shoal_V1_Value.OneOf_Kind) -> Shoal_V1_Value {
    var value = Shoal_V1_Value()
    value.kind = kind
    return value
}

private func condition(_ field: String, _ op: Shoal_V1_FieldCondition.OneOf_Op) -> Shoal_V1_Filter {
    var condition = Shoal_V1_FieldCondition()
    condition.field = field
    condition.op = op
    var filter = Shoal_V1_Filter()
    filter.condition = condition
    return filter
}

private func list(_ filters: [Shoal_V1_Filter]) -> Shoal_V1_FilterList {
    var list = Shoal_V1_FilterList()
    list.filters = filters
    return list
}

/// color in ["red", "blue"] AND NOT (year >= 2020 AND year < 2024.5)
/// AND (tags exists OR score == 0.5 OR lang != "en").
private func sampleFilter() -> Shoal_V1_Filter {
    var colors = Shoal_V1_ValueList()
    colors.values = [value(.stringValue("red")), value(.stringValue("blue"))]

    var range = Shoal_V1_Range()
    range.gte.intValue = 2020
    range.lt.doubleValue = 2024.5

    var negated = Shoal_V1_Filter()
    negated.negate = condition("year", .range(range))

    var anyOf = Shoal_V1_Filter()
    anyOf.anyOf = list([
        condition("tags", .exists(true)),
        condition("score", .eq(value(.doubleValue(0.5)))),
        condition("lang", .ne(value(.stringValue("en")))),
    ])

    var root = Shoal_V1_Filter()
    root.allOf = list([condition("color", .isIn(colors)), negated, anyOf])
    return root
}

private func samplePoint(id: String) -> Shoal_V1_Point {
    var tags = Shoal_V1_StringList()
    tags.values = ["a", "b", ""]
    var point = Shoal_V1_Point()
    point.id = id
    point.vector = [0.25, -1.5, 3.0e-8, .greatestFiniteMagnitude]
    point.metadata = [
        "title": value(.stringValue("Ünïcode ✓")),
        "year": value(.intValue(-9_007_199_254_740_993)),
        "score": value(.doubleValue(0.1)),
        "public": value(.boolValue(false)),
        "tags": value(.stringList(tags)),
    ]
    return point
}

@Suite("Wire format")
struct WireFormatTests {
    @Test("A search with a nested filter tree round-trips")
    func searchWithFilterTreeRoundTrips() throws {
        var request = Shoal_V1_SearchRequest()
        request.collection = "faces"
        request.vector = [1, 0, -0.5]
        request.k = 10
        request.ef = 0  // explicitly set: presence must survive
        request.filter = sampleFilter()
        request.includeMetadata = true
        request.allowPartial = true

        let decoded = try roundTrip(request)
        #expect(decoded == request)
        #expect(decoded.hasEf && decoded.ef == 0)
        #expect(decoded.hasFilter)

        let children = decoded.filter.allOf.filters
        #expect(children.count == 3)
        #expect(children[0].condition.isIn.values.map(\.stringValue) == ["red", "blue"])
        let range = children[1].negate.condition.range
        #expect(range.gte.kind == .intValue(2020))
        #expect(range.lt.kind == .doubleValue(2024.5))
        #expect(!range.hasGt && !range.hasLte)
        #expect(children[2].anyOf.filters.map(\.condition.field) == ["tags", "score", "lang"])
        #expect(children[2].anyOf.filters[0].condition.op == .exists(true))
    }

    @Test("Unset optional fields stay unset")
    func unsetOptionalsStayUnset() throws {
        var request = Shoal_V1_SearchRequest()
        request.k = 1
        let decoded = try roundTrip(request)
        #expect(!decoded.hasEf)
        #expect(!decoded.hasFilter)
        #expect(decoded.filter.kind == nil)
    }

    @Test("Points with every kind of metadata value round-trip")
    func pointsWithMetadataRoundTrip() throws {
        var upsert = Shoal_V1_UpsertRequest()
        upsert.collection = "docs"
        upsert.points = [samplePoint(id: "p-1"), samplePoint(id: "p-2")]

        let decoded = try roundTrip(upsert)
        #expect(decoded == upsert)
        let metadata = decoded.points[0].metadata
        #expect(metadata["year"]?.intValue == -9_007_199_254_740_993)
        #expect(metadata["tags"]?.stringList.values == ["a", "b", ""])
        #expect(metadata["public"]?.kind == .boolValue(false))
        #expect(decoded.points[1].vector == upsert.points[1].vector)
    }

    @Test("Versioned write batches and scored hits round-trip")
    func shardMessagesRoundTrip() throws {
        var upsert = Shoal_V1_WriteOp()
        upsert.version = UInt64.max
        upsert.upsert = samplePoint(id: "x")
        var delete = Shoal_V1_WriteOp()
        delete.version = 42
        delete.deleteID = "y"
        var batch = Shoal_V1_WriteBatchRequest()
        batch.replica.collection = "docs"
        batch.replica.shardID = 7
        batch.ops = [upsert, delete]
        #expect(try roundTrip(batch) == batch)

        var hit = Shoal_V1_ScoredPoint()
        hit.id = "x"
        hit.score = -4
        hit.distance = 4
        hit.metadata = samplePoint(id: "x").metadata
        var response = Shoal_V1_ReplicaSearchResponse()
        response.hits = [hit]
        response.strategy = .hnswFiltered
        response.distancesComputed = 1234
        #expect(try roundTrip(response) == response)
    }

    @Test("Vectors are packed on the wire")
    func vectorsArePacked() throws {
        var point = Shoal_V1_Point()
        point.vector = [1, 2]
        let bytes: [UInt8] = try point.serializedBytes()
        // Field 2, wire type 2 (length-delimited), 8 bytes: two little-endian float32s.
        #expect(bytes == [0x12, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40])
    }

    @Test("HealthResponse bytes match Python grpcio-tools' encoding")
    func healthResponseMatchesPython() throws {
        var health = Shoal_V1_HealthResponse()
        health.nodeID = "n1"
        health.nodeName = "127.0.0.1:7000"
        health.status = .serving
        health.uptimeMs = 1234
        health.version = "0.1.0"
        // types_pb2.HealthResponse(node_id="n1", node_name="127.0.0.1:7000",
        //   status=SERVING, uptime_ms=1234, version="0.1.0").SerializeToString()
        let python = "0a026e31120e3132372e302e302e313a37303030180120d2092a05302e312e30"
        #expect(hex(try health.serializedBytes()) == python)
        #expect(try roundTrip(health) == health)
    }

    @Test("Unknown enum values from a newer peer are kept")
    func unknownEnumValuesAreKept() throws {
        // CollectionConfig.metric (field 3, varint) = 99.
        let config = try Shoal_V1_CollectionConfig(serializedBytes: [0x18, 0x63])
        #expect(config.metric == .UNRECOGNIZED(99))
        #expect(try config.serializedBytes() == [0x18, 0x63] as [UInt8])
    }

    @Test(
        "Malformed bytes throw",
        arguments: [
            // Length-delimited field whose length runs past the end.
            [0x0A, 0x05, 0x61] as [UInt8],
            // Varint that never ends.
            [0x18, 0xFF, 0xFF],
            // Wire type 7 does not exist.
            [0x0F],
            // Field number 0 is invalid.
            [0x02, 0x00],
            // An end-group tag with no start group.
            [0x0C],
        ]
    )
    func malformedBytesThrow(bytes: [UInt8]) {
        #expect(throws: (any Error).self) {
            _ = try Shoal_V1_SearchRequest(serializedBytes: bytes)
        }
    }

    @Test("A truncated search request throws")
    func truncatedMessageThrows() throws {
        var request = Shoal_V1_SearchRequest()
        request.collection = "faces"
        request.vector = [1, 2, 3]
        request.filter = sampleFilter()
        let bytes: [UInt8] = try request.serializedBytes()
        #expect(throws: SwiftProtobuf.BinaryDecodingError.self) {
            _ = try Shoal_V1_SearchRequest(serializedBytes: Array(bytes.dropLast()))
        }
    }

    @Test("A string field with invalid UTF-8 throws")
    func invalidUTF8Throws() {
        // Point.id (field 1) = 0xFF, not UTF-8.
        #expect(throws: SwiftProtobuf.BinaryDecodingError.self) {
            _ = try Shoal_V1_Point(serializedBytes: [0x0A, 0x01, 0xFF] as [UInt8])
        }
    }
}
