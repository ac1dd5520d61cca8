@testable import Coordinator
import Testing
import VectorCore

/// Adopting orphans and rebuilding a placement from the nodes (`shoal admin recover`),
/// as pure changes of the cluster state.
@Suite struct RecoveryPlanTests {
    private func threeNodes() throws -> ClusterState {
        var state = ClusterState()
        for i in 1...3 { try state.addNode(id: "n\(i)", address: "127.0.0.1:710\(i)") }
        return state
    }

    private func orphan(_ node: String, _ collection: String, _ shard: UInt32, version: UInt64 = 1, points: UInt64 = 10,
                        config: CollectionConfig? = nil) -> HeldOrphan {
        HeldOrphan(node: node, collection: collection, shard: shard, incarnation: 7, points: points, maxVersion: version, config: config)
    }

    @Test func unknownCollectionsAreRebuiltFromTheirReplicasConfiguration() throws {
        var state = try threeNodes()
        let config = CollectionConfig(name: "faces", dimension: 8, metric: .cosine, shardCount: 3, replicationFactor: 1)
        let report = state.adopt([orphan("n1", "faces", 0, config: config), orphan("n2", "faces", 2, config: config),
                                  orphan("n3", "faces", 2, version: 9, config: config)])
        #expect(report.created == ["faces"])
        let rebuilt = try #require(state.collections["faces"])
        #expect(rebuilt.config.dimension == 8 && rebuilt.config.metric == .cosine && rebuilt.config.shardCount == 3)
        #expect(rebuilt.shards[0].replicas.map(\.nodeId) == ["n1"])
        #expect(rebuilt.shards[2].replicas.map(\.nodeId) == ["n3"])  // the most recent replica first
        #expect(report.skipped.map(\.orphan.node) == ["n2"])  // replication factor 1: the older one stays an orphan
        #expect(report.missing.map(\.shard) == [1])
        try state.validate()
    }

    @Test func anOrphanJoinsAShardOnlyWhileItHasRoomAndMatches() throws {
        var state = try threeNodes()
        try state.addCollection(CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 2, replicationFactor: 2),
                                shards: [ShardAssignment(shardId: 0, replicas: [Replica(nodeId: "n1")]),
                                         ShardAssignment(shardId: 1, replicas: [Replica(nodeId: "n1"), Replica(nodeId: "n2")])])
        let other = CollectionConfig(name: "c", dimension: 16, metric: .l2, shardCount: 2)
        let report = state.adopt([orphan("n2", "c", 0), orphan("n3", "c", 1), orphan("n3", "c", 0, config: other), orphan("n3", "c", 5)])
        #expect(report.adopted.map { "\($0.node)/\($0.shard)" } == ["n2/0"])
        #expect(Set(report.skipped.map { "\($0.orphan.node)/\($0.orphan.shard)" }) == ["n3/0", "n3/1", "n3/5"])
        #expect(state.collections["c"]!.shards[0].replicas.map(\.nodeId) == ["n1", "n2"])
    }

    @Test func recoverTakesOutWhatTheNodesNoLongerHoldAndEndsMovesWithoutDeciding() throws {
        var state = try threeNodes()
        try state.addCollection(CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 2),
                                shards: [ShardAssignment(shardId: 0, replicas: [Replica(nodeId: "n1")]),
                                         ShardAssignment(shardId: 1, replicas: [Replica(nodeId: "n2")])])
        let move = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n3", points: 10, nowMs: 1, validateNow: true)
        try state.startMove(move, nowMs: 2)
        try state.beginDualWrite(move, targetIncarnation: 7, sourceIncarnation: 3, nowMs: 3)
        // What the nodes really hold: n2 no longer has shard 1 (the move finished after this
        // metadata was saved), n3 has it; n1 has shard 0. n3 answered, n1 and n2 too.
        let held: Set<String> = ["n1/0", "n3/1"]
        let cleanup = state.cleanUpForRecovery(answered: ["n1", "n2", "n3"], holds: { held.contains("\($0)/\($2)") }, nowMs: 4)
        #expect(cleanup.movesEnded == [move])
        #expect(cleanup.removed.map { "\($0.node)/\($0.shard)" } == ["n2/1", "n3/1"])  // missing, and the catching-up target
        #expect(state.moves[move]?.state == .failed && state.moves[move]?.endedByRecover == true)
        // The ended move decides nothing: its target (incarnation 7) is an orphan, not a drop.
        #expect(!state.dropIsDecided(collection: "c", shard: 1, incarnation: 7, on: "n3"))
        #expect(state.isOrphan(collection: "c", shard: 1, incarnation: 7, on: "n3"))
        let report = state.adopt([orphan("n3", "c", 1)])
        #expect(report.adopted.count == 1 && state.collections["c"]!.shards[1].replicas.map(\.nodeId) == ["n3"])
        try state.validate()
    }

    @Test func metadataBehindTheNodesDecidesNoDrop() throws {
        var state = try threeNodes()
        try state.addCollection(CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 1, uid: "u1"),
                                shards: [ShardAssignment(shardId: 0, replicas: [Replica(nodeId: "n1")])])
        try state.removeCollection("c", nowMs: 1)
        #expect(state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "u1"))
        let epoch = state.epoch
        state.markBehindNodes(fence: epoch + 40, reason: "test")
        #expect(state.epoch == epoch + 41)  // past every fence the nodes hold
        #expect(!state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "u1"))
        _ = state.cleanUpForRecovery(answered: [], holds: { _, _, _ in true }, nowMs: 2)
        #expect(state.needsRecover == nil && state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "u1"))
    }

    @Test func orphanIDsRoundTrip() throws {
        let o = orphan("3f2a-node", "faces_v2", 12)
        let parsed = try HeldOrphan.parse(id: o.id)
        #expect(parsed.node == "3f2a-node" && parsed.collection == "faces_v2" && parsed.shard == 12 && parsed.incarnation == 7)
        for bad in ["", "a/b/c", "a/b/x/1", "/c/1/2", "a/b/1/2/3"] {
            #expect(throws: ShoalError.self) { try HeldOrphan.parse(id: bad) }
        }
    }
}
