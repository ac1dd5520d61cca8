import Coordinator
import ShoalProto
import Testing
import VectorCore

@testable import ShardNode

/// The coordinator (CreateCollection) and the node (CreateReplica) accept exactly the
/// same HNSW parameters and resolve them alike: a collection the coordinator admits is
/// one its nodes create.
@Suite struct SharedLimitsTests {
    static func edges(_ range: ClosedRange<UInt32>) -> [UInt32] {
        [0, 1, range.lowerBound - 1, range.lowerBound, range.lowerBound + 1, range.upperBound - 1, range.upperBound,
         range.upperBound + 1, 10_000, 100_001, UInt32.max]
    }

    @Test func coordinatorAndNodeAcceptTheSameHNSWParameters() {
        var accepted = 0
        var refused = 0
        for m in Self.edges(RequestLimits.hnswM) {
            for efc in Self.edges(RequestLimits.hnswEfConstruction) {
                for ef in Self.edges(RequestLimits.hnswEf) {
                    var proto = Shoal_V1_CollectionConfig()
                    proto.name = "c"
                    proto.dimension = 8
                    proto.metric = .l2
                    proto.shardCount = 1
                    proto.hnsw.m = m
                    proto.hnsw.efConstruction = efc
                    proto.hnsw.ef = ef
                    let coordinator = try? CollectionConfig(resolving: proto, liveNodes: 1)
                    let node = try? ReplicaConfig(proto: proto)
                    #expect((coordinator == nil) == (node == nil), "m \(m), ef_construction \(efc), ef \(ef)")
                    if let coordinator, let node {
                        #expect(Int(coordinator.hnsw.m) == node.hnsw.m)
                        #expect(Int(coordinator.hnsw.efConstruction) == node.hnsw.efConstruction)
                        #expect(Int(coordinator.hnsw.ef) == node.hnsw.ef)
                        // What the coordinator sends its nodes (the resolved config) is accepted as is.
                        #expect((try? ReplicaConfig(proto: coordinator.proto))?.indexesLike(node) == true)
                        accepted += 1
                    } else {
                        refused += 1
                    }
                }
            }
        }
        #expect(accepted > 0 && refused > 0)
    }
}
