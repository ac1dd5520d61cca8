import Testing
import VectorCore

@Test func unknownRawCodesMapToUnknown() {
    #expect(StatusCode(rawCode: 3) == .invalidArgument)
    #expect(StatusCode(rawCode: 99) == .unknown)
    #expect(ShoalError(.notFound, "collection 'x'").description == "NOT_FOUND: collection 'x'")
}
