import Coordinator
import Testing
import VectorCore

/// A cluster of three nodes with one collection of four shards on them.
func sampleState() throws -> ClusterState {
    var state = ClusterState()
    try state.addNode(id: "n1", address: "127.0.0.1:7001")
    try state.addNode(id: "n2", address: "127.0.0.1:7002")
    try state.addNode(id: "n3", address: "127.0.0.1:7003")
    let config = CollectionConfig(name: "faces", dimension: 512, metric: .cosine, shardCount: 4, replicationFactor: 2,
                                  hnsw: HNSWConfig(m: 32, efConstruction: 400, ef: 128))
    let shards = try PlacementPlanner.plan(shardCount: 4, replicationFactor: 2, nodes: state.liveNodes)
    try state.addCollection(config, shards: shards)
    return state
}

@Suite struct ClusterStateTests {
    @Test func everyChangeBumpsTheEpoch() throws {
        var state = try sampleState()
        #expect(state.epoch == 4)
        try state.setReplicas(collection: "faces", shard: 1,
                              [Replica(nodeId: "n1"), Replica(nodeId: "n3", state: .catchingUp)])
        #expect(state.epoch == 5)
        try state.setNodeState("n2", .draining)
        #expect(state.epoch == 6)
        #expect(state.liveNodes.map(\.id) == ["n1", "n3"])
        try state.removeCollection("faces", nowMs: 0)
        try state.setNodeState("n2", .removed)
        #expect(state.epoch == 8)
    }

    @Test func rejectedChangesChangeNothing() throws {
        var state = try sampleState()
        let before = state
        #expect(throws: ShoalError.self) { try state.addNode(id: "n1", address: "x:1") }
        #expect(throws: ShoalError.self) {
            try state.addCollection(CollectionConfig(name: "faces", dimension: 3, metric: .l2, shardCount: 1), shards: [])
        }
        #expect(throws: ShoalError.self) {  // wrong number of shard entries
            try state.addCollection(CollectionConfig(name: "x", dimension: 3, metric: .l2, shardCount: 2),
                                    shards: [ShardAssignment(shardId: 0, replicas: [])])
        }
        #expect(throws: ShoalError.self) {  // unknown node
            try state.setReplicas(collection: "faces", shard: 0, [Replica(nodeId: "n9")])
        }
        #expect(throws: ShoalError.self) {  // two replicas on one node
            try state.setReplicas(collection: "faces", shard: 0, [Replica(nodeId: "n1"), Replica(nodeId: "n1")])
        }
        #expect(throws: ShoalError.self) { try state.setNodeState("n1", .removed) }  // still holds replicas
        #expect(state == before)
    }
}
