import Coordinator
import ShoalProto
import Testing
import VectorCore

func protoConfig(_ name: String = "faces", dimension: UInt32 = 512, metric: Shoal_V1_Metric = .cosine) -> Shoal_V1_CollectionConfig {
    var p = Shoal_V1_CollectionConfig()
    p.name = name
    p.dimension = dimension
    p.metric = metric
    return p
}

@Suite struct ClusterStateProtoTests {
    @Test func resolvesDefaults() throws {
        let config = try CollectionConfig(resolving: protoConfig(), liveNodes: 3)
        #expect(config == CollectionConfig(name: "faces", dimension: 512, metric: .cosine, shardCount: 6,
                                           replicationFactor: 2, hnsw: HNSWConfig(m: 16, efConstruction: 200, ef: 64)))
        #expect(try CollectionConfig(resolving: protoConfig(), liveNodes: 1).replicationFactor == 1)
        var one = protoConfig()
        one.writeConsistency = .one
        #expect(try CollectionConfig(resolving: one, liveNodes: 2).writeConsistency == .one)
        var p = protoConfig(metric: .ip)
        p.shardCount = 5
        p.replicationFactor = 2
        p.hnsw.m = 32
        let explicit = try CollectionConfig(resolving: p, liveNodes: 3)
        #expect(explicit.shardCount == 5 && explicit.replicationFactor == 2 && explicit.hnsw.m == 32)
        #expect(explicit.hnsw.efConstruction == 200 && explicit.metric == .innerProduct)
        #expect(try CollectionConfig(resolving: explicit.proto, liveNodes: 1) == explicit)  // round trip
    }

    @Test(arguments: [
        (protoConfig(""), "collection name"),
        (protoConfig("has space"), "collection name"),
        (protoConfig(String(repeating: "x", count: 129)), "collection name"),
        (protoConfig(dimension: 0), "dimension 0"),
        (protoConfig(dimension: 65537), "dimension 65537"),
        (protoConfig(metric: .unspecified), "metric is required"),
    ])
    func rejectsBadConfigs(config: Shoal_V1_CollectionConfig, message: String) {
        let error = #expect(throws: ShoalError.self) { try CollectionConfig(resolving: config, liveNodes: 2) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func rejectsHnswOutOfRange() {
        var p = protoConfig()
        p.hnsw.m = 1
        #expect(throws: ShoalError.self) { try CollectionConfig(resolving: p, liveNodes: 2) }
        p.hnsw.m = 16
        p.hnsw.ef = 100_001
        #expect(throws: ShoalError.self) { try CollectionConfig(resolving: p, liveNodes: 2) }
        p.hnsw.ef = 0
        p.hnsw.efConstruction = 4_097  // the nodes' bound: once accepted here, refused there
        let error = #expect(throws: ShoalError.self) { try CollectionConfig(resolving: p, liveNodes: 2) }
        #expect(error?.message == "hnsw.ef_construction must be 4…4096, got 4097")
        p.hnsw.efConstruction = 0
        p.shardCount = 1025
        #expect(throws: ShoalError.self) { try CollectionConfig(resolving: p, liveNodes: 2) }
    }

    @Test func shardPlacementsCarryAddressesAndStates() throws {
        var state = try sampleState()
        try state.setReplicas(collection: "faces", shard: 2, [Replica(nodeId: "n3"), Replica(nodeId: "n2", state: .catchingUp)])
        let placements = try #require(state.shardPlacements(of: "faces"))
        #expect(placements.map(\.shardID) == [0, 1, 2, 3])
        #expect(placements[2].replicas.map(\.nodeID) == ["n3", "n2"])
        #expect(placements[2].replicas.map(\.address) == ["127.0.0.1:7003", "127.0.0.1:7002"])
        #expect(placements[2].replicas.map(\.state) == [.ready, .catchingUp])
        #expect(state.shardPlacements(of: "nope") == nil)
    }
}
