import ShoalProto
import Testing
import VectorCore

@testable import Coordinator

/// A search's cost, checked before any node is asked: Σ (k + offset) and the reply
/// size it implies; and the size the merge counts for each hit.
@Suite struct SearchCostTests {
    static func request(k: UInt32, offset: UInt32 = 0, includeVector: Bool = false) -> Shoal_V1_SearchRequest {
        .with {
            $0.collection = "faces"
            $0.vector = [Float](repeating: 0.5, count: 512)
            $0.k = k
            $0.offset = offset
            $0.includeVector = includeVector
        }
    }

    static func refusal(_ plans: [SearchPlan], _ limits: RequestLimits) -> ShoalError? {
        do throws(ShoalError) {
            try SearchPlan.checkCost(plans, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func workIsSummedOverTheBatch() throws {
        let state = try sampleState()
        let limits = RequestLimits()
        let plan = try SearchPlan(Self.request(k: 90, offset: 10), state: state, limits: limits)
        #expect(plan.work == 100)
        #expect(Self.refusal(Array(repeating: plan, count: 1_000), limits) == nil)  // exactly 100,000
        let over = try #require(Self.refusal(Array(repeating: plan, count: 1_001), limits))
        #expect(over.code == .resourceExhausted)
        #expect(over.message.contains("ask for 100100 hits in all (Σ k + offset); the limit is 100000 (--max-search-work)"))
    }

    @Test func replySizeBoundCountsIdsVectorsAndOverhead() throws {
        let state = try sampleState()
        var limits = RequestLimits()
        let bare = try SearchPlan(Self.request(k: 10), state: state, limits: limits)
        let withVectors = try SearchPlan(Self.request(k: 10, includeVector: true), state: state, limits: limits)
        #expect(bare.replyBytesEstimate == 10 * (SearchReplySize.idBytesEstimate + SearchReplySize.perHitOverhead))
        #expect(withVectors.replyBytesEstimate == bare.replyBytesEstimate + 10 * (4 * 512 + 6))
        limits.maxMessageBytes = withVectors.replyBytesEstimate
        #expect(Self.refusal([withVectors], limits) == nil)
        limits.maxMessageBytes -= 1
        let over = try #require(Self.refusal([withVectors], limits))
        #expect(over.code == .resourceExhausted)
        #expect(over.message.hasPrefix("the reply could take \(withVectors.replyBytesEstimate) bytes, over the \(limits.maxMessageBytes)-byte message limit"))
        #expect(Self.refusal([bare], limits) == nil)
    }

    @Test func aHitCountsItsEncodedParts() {
        let hit = Shoal_V1_ScoredPoint.with {
            $0.id = "abc"
            $0.vector = [1, 2]
            $0.metadata = ["t": .with { $0.stringValue = "xy" }, "n": .with { $0.intValue = 3 }]
        }
        #expect(SearchReplySize.bytes(of: hit) == 3 + 8 + 6 + (1 + 8 + 4) + (1 + 8 + 9) + SearchReplySize.perHitOverhead)
        // The reply's real encoding never exceeds the count.
        #expect((try! hit.serializedBytes() as [UInt8]).count <= SearchReplySize.bytes(of: hit))
    }
}
