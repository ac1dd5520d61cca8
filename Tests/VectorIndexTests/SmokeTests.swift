import Testing
import VectorCore
@testable import VectorIndex

@Test func smoke() throws {
    let index = HNSWIndex(dimension: 4, metric: .l2, capacity: 100)
    try index.insert(id: 0, vector: [0, 0, 0, 0])
    #expect(index.count == 1)
}
