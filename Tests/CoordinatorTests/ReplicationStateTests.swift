import Coordinator
import Testing
import VectorCore

/// Four nodes, one collection of two shards with two replicas each: shard 0 on n1, n2;
/// shard 1 on n2, n3. Node n4 holds nothing.
private func replicatedState() throws -> ClusterState {
    var state = ClusterState()
    for i in 1...4 { try state.addNode(id: "n\(i)", address: "127.0.0.1:700\(i)") }
    let config = CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 2, replicationFactor: 2, uid: "c-1")
    try state.addCollection(config, shards: [
        ShardAssignment(shardId: 0, replicas: [Replica(nodeId: "n1"), Replica(nodeId: "n2")]),
        ShardAssignment(shardId: 1, replicas: [Replica(nodeId: "n2"), Replica(nodeId: "n3")]),
    ])
    return state
}

@Suite struct ReplicationStateTests {
    @Test func aReplicaThatMissesAWriteLeavesTheInSyncSetButNeverTheLast() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        #expect(replicas(state, 0) == ["n1:stale", "n2:ready"])
        #expect(state.collections["c"]!.shards[0].replicas[0].staleSinceMs == 100)
        #expect(state.collections["c"]!.shards[0].readable.map(\.nodeId) == ["n2"])
        let epoch = state.epoch
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 200)  // already stale: nothing changes
        #expect(state.epoch == epoch && state.collections["c"]!.shards[0].replicas[0].staleSinceMs == 100)
        #expect(throws: ShoalError.self) { try state.markStale(collection: "c", shard: 0, node: "n2", nowMs: 300) }
        #expect(replicas(state, 0) == ["n1:stale", "n2:ready"])
        try state.validate()
    }

    @Test func aCatchUpBringsAStaleReplicaBackOnlyWhenNoMissIsNewerThanItsLastPass() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        #expect(throws: ShoalError.self) {  // only a stale replica catches up
            _ = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n3", points: 0, nowMs: 1, validateNow: true, kind: .catchUp)
        }
        let id = try state.addMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, nowMs: 1, validateNow: true, kind: .catchUp)
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 3, sourceIncarnation: 4, minVersion: 99, nowMs: 3)
        #expect(replicas(state, 0) == ["n1:catching_up", "n2:ready"])
        #expect(state.moves[id]?.minVersion == 99)
        try state.setMovePhase(id, .catchUp, nowMs: 4)
        try state.recordMissedWrite(id, nowMs: 5)  // tolerated until reads switch
        #expect(throws: ShoalError.self) { try state.switchReads(id, expectedMisses: 0, nowMs: 6) }
        #expect(replicas(state, 0) == ["n1:catching_up", "n2:ready"])
        try state.switchReads(id, expectedMisses: 1, nowMs: 7)
        #expect(replicas(state, 0) == ["n1:ready", "n2:ready"])
        #expect(state.collections["c"]!.shards[0].replicas[0].staleSinceMs == nil)
        try state.completeMove(id, nowMs: 8)
        #expect(replicas(state, 0) == ["n1:ready", "n2:ready"] && state.moves[id]?.state == .done)
        try state.recordMissedWrite(id, nowMs: 9)  // the task has ended: nothing to record
        #expect(state.moves[id]?.misses == 1)
        try state.validate()
    }

    @Test func aFailedCatchUpLeavesItsTargetStaleAndDropsNothing() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        let id = try state.addMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, nowMs: 1, validateNow: true, kind: .catchUp)
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 3, nowMs: 3)
        try state.rollBackMove(id, as: .failed, error: "node n1 went away", nowMs: 4)
        #expect(replicas(state, 0) == ["n1:stale", "n2:ready"])
        #expect(!state.dropIsDecided(collection: "c", shard: 0, incarnation: 3, on: "n1", uid: "c-1"))
    }

    @Test func aLaterCatchUpStartsNoHigherThanAnEarlierOneThatRolledBack() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        let first = try state.addMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, nowMs: 1, validateNow: true, kind: .catchUp)
        try state.startMove(first, nowMs: 2)
        try state.beginDualWrite(first, targetIncarnation: 3, minVersion: 500, nowMs: 3)
        try state.rollBackMove(first, as: .rolledBack, error: "node n1 went down", nowMs: 4)
        #expect(state.collections["c"]!.shards[0].replicas[0].catchUpFloor == 500)
        let second = try state.addMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, nowMs: 5, validateNow: true, kind: .catchUp)
        try state.startMove(second, nowMs: 6)
        try state.beginDualWrite(second, targetIncarnation: 3, minVersion: 900, nowMs: 7)
        #expect(state.collections["c"]!.shards[0].replicas[0].catchUpFloor == 500)
        try state.setMovePhase(second, .catchUp, nowMs: 8)
        try state.switchReads(second, expectedMisses: 0, nowMs: 9)
        #expect(state.collections["c"]!.shards[0].replicas[0].catchUpFloor == nil)  // in sync again: no floor
    }

    @Test func aMoveWhoseSourceMissesAWriteRollsBackAndIsCarriedOnFromAReplicaInSync() throws {
        var state = try replicatedState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 1, validateNow: true)
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 5, nowMs: 3)
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 4)
        #expect(state.moves[id]?.state == .failed)
        #expect(replicas(state, 0) == ["n1:stale", "n2:ready"])  // the target left with the rollback
        #expect(state.dropIsDecided(collection: "c", shard: 0, incarnation: 5, on: "n4", uid: "c-1"))
        // The move's change goes on as a replicate from n2 to n4 that replaces n1.
        let next = try #require(state.moves[id]?.retriedAs)
        let retry = try #require(state.moves[next])
        #expect(retry.state == .pending && retry.taskKind == .replicate)
        #expect(retry.from == "n2" && retry.to == "n4" && retry.replaces == "n1")
        try state.startMove(next, nowMs: 5)
        try state.beginDualWrite(next, targetIncarnation: 6, nowMs: 6)
        #expect(!state.dropIsDecided(collection: "c", shard: 0, incarnation: 6, on: "n4", uid: "c-1"))
        try state.setMovePhase(next, .catchUp, nowMs: 7)
        try state.switchReads(next, expectedMisses: 0, nowMs: 8)
        try state.completeMove(next, nowMs: 9)
        #expect(replicas(state, 0) == ["n2:ready", "n4:ready"])  // the placement the move was to reach
        #expect(state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "c-1"))
        try state.validate()
    }

    @Test func aCancelledMoveWhoseSourceMissesAWriteIsNotCarriedOn() throws {
        var state = try replicatedState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 1, validateNow: true)
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 5, nowMs: 3)
        try state.requestCancel(id, nowMs: 4)
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 5)
        #expect(state.moves[id]?.state == .failed && state.moves[id]?.retriedAs == nil)
        #expect(state.moves.values.filter { $0.isActive }.isEmpty)
    }

    @Test func aMissAfterReadsSwitchedTakesTheTargetOutOfTheInSyncSet() throws {
        var state = try replicatedState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 1, validateNow: true)
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 5, nowMs: 3)
        try state.setMovePhase(id, .catchUp, nowMs: 4)
        try state.switchReads(id, expectedMisses: 0, nowMs: 5)
        try state.recordMissedWrite(id, nowMs: 6)  // routed while it was copying; it answers reads now
        #expect(replicas(state, 0) == ["n1:retiring", "n2:ready", "n4:stale"])
    }

    @Test func aReplicateTaskReplacesALostReplicaAndRecordsTheDrop() throws {
        var state = try replicatedState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n2", to: "n4", points: 0, nowMs: 1, validateNow: true,
                                   kind: .replicate, replaces: "n1")
        try state.startMove(id, nowMs: 2)
        try state.beginDualWrite(id, targetIncarnation: 5, nowMs: 3)
        #expect(replicas(state, 0) == ["n1:ready", "n2:ready", "n4:catching_up"])
        #expect(!state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "c-1"))
        try state.setMovePhase(id, .catchUp, nowMs: 4)
        try state.switchReads(id, expectedMisses: 0, nowMs: 5)
        #expect(replicas(state, 0) == ["n2:ready", "n4:ready"])
        try state.completeMove(id, nowMs: 6)
        #expect(replicas(state, 0) == ["n2:ready", "n4:ready"])
        #expect(state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n1", uid: "c-1"))
        #expect(!state.dropIsDecided(collection: "c", shard: 0, incarnation: 1, on: "n3", uid: "c-1"))
        try state.validate()
    }

    @Test func repairsCatchUpStaleReplicasReplaceLostOnesAndRestoreTheFactor() throws {
        var state = try replicatedState()
        let all: Set<String> = ["n1", "n2", "n3", "n4"]
        #expect(state.replicaRepairs(up: all, lost: []).isEmpty)

        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        #expect(state.replicaRepairs(up: all.subtracting(["n1"]), lost: []).isEmpty)  // its node does not answer yet
        let catchUp = state.replicaRepairs(up: all, lost: [])
        #expect(catchUp == [PlannedMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, kind: .catchUp)])

        // n3 lost: shard 1 gets a replica on the least loaded node without one (n4, empty).
        let lost = state.replicaRepairs(up: ["n1", "n2", "n4"], lost: ["n3"])
        #expect(lost == [
            PlannedMove(collection: "c", shard: 0, from: "n2", to: "n1", points: 0, kind: .catchUp),
            PlannedMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, kind: .replicate, replaces: "n3"),
        ])

        // Shard 0's only in-sync replica is on a lost node: nothing to copy from; shard 1 copies from n3.
        #expect(state.replicaRepairs(up: ["n1", "n3", "n4"], lost: ["n2"])
            == [PlannedMove(collection: "c", shard: 1, from: "n3", to: "n4", points: 0, kind: .replicate, replaces: "n2")])

        // A shard below its factor (a node removed) gets a new replica; none while the shard has an active task.
        try state.removeNode("n3", force: true)
        #expect(replicas(state, 1) == ["n2:ready"])
        let restore = state.replicaRepairs(up: ["n1", "n2", "n4"], lost: [])
        #expect(restore.contains(PlannedMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, kind: .replicate)))
        _ = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 1, validateNow: true, kind: .replicate)
        #expect(!state.replicaRepairs(up: ["n1", "n2", "n4"], lost: []).contains { $0.shard == 1 })
    }

    @Test func removingANodeIsRefusedWhenItHoldsTheOnlyInSyncReplica() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 0, node: "n1", nowMs: 100)
        #expect(throws: ShoalError.self) { try state.removeNode("n2", force: true) }  // shard 0's other replica is stale
        try state.removeNode("n1", force: true)  // n2 holds shard 0 in sync
        #expect(replicas(state, 0) == ["n2:ready"])
    }

    @Test func aDownNodesReplicasGoStaleExceptAShardsLastInSyncOne() throws {
        var state = try replicatedState()
        try state.markStale(collection: "c", shard: 1, node: "n3", nowMs: 50)
        state.markStaleWhereSafe(on: "n2", nowMs: 100)
        #expect(replicas(state, 0) == ["n1:ready", "n2:stale"])
        #expect(replicas(state, 1) == ["n2:ready", "n3:stale"])  // n2 holds shard 1's last in-sync replica
        let epoch = state.epoch
        state.markStaleWhereSafe(on: "n2", nowMs: 200)
        #expect(state.epoch == epoch)
    }

    @Test func writeConsistencyNeeds() {
        #expect(WriteConsistency.all.needed(replicationFactor: 3) == 1)
        #expect(WriteConsistency.one.needed(replicationFactor: 3) == 1)
        #expect(WriteConsistency.majority.needed(replicationFactor: 2) == 2)
        #expect(WriteConsistency.majority.needed(replicationFactor: 3) == 2)
        #expect(WriteConsistency.majority.needed(replicationFactor: 1) == 1)
    }
}
