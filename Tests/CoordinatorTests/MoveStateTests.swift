import Coordinator
import Foundation
import Testing
import VectorCore

/// Three nodes, one collection of three single-replica shards: shard i on node n(i+1);
/// node n4 is empty.
private func movingState() throws -> ClusterState {
    var state = ClusterState()
    for i in 1...4 { try state.addNode(id: "n\(i)", address: "127.0.0.1:700\(i)") }
    let config = CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 3, uid: "c-1")
    try state.addCollection(config, shards: (0..<3).map { ShardAssignment(shardId: UInt32($0), replicas: [Replica(nodeId: "n\($0 + 1)")]) })
    return state
}

/// Shard `shard` of collection "c" as `node:state` strings, in placement order.
func replicas(_ state: ClusterState, _ shard: Int) -> [String] {
    state.collections["c"]!.shards[shard].replicas.map { "\($0.nodeId):\($0.state.rawValue)" }
}

@Suite struct MoveStateTests {
    @Test func aMoveWalksThePlacementThroughEveryPhase() throws {
        var state = try movingState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 10, nowMs: 1, validateNow: true)
        #expect(id == "move-1")
        #expect(state.moves[id]?.state == .pending)

        try state.startMove(id, nowMs: 2)
        #expect(state.moves[id]?.state == .running)
        #expect(state.runningMove(collection: "c", shard: 0)?.id == id)
        #expect(replicas(state, 0) == ["n1:ready"])  // not in the placement until the replica exists

        try state.beginDualWrite(id, targetIncarnation: 7, nowMs: 3)
        #expect(state.moves[id]?.phase == .copyRecords && state.moves[id]?.targetIncarnation == 7)
        #expect(replicas(state, 0) == ["n1:ready", "n4:catching_up"])

        try state.setMovePhase(id, .catchUp, copied: 10, total: 10, nowMs: 4)
        try state.switchReads(id, nowMs: 5)
        #expect(replicas(state, 0) == ["n1:retiring", "n4:ready"])

        try state.setMovePhase(id, .dropSource, nowMs: 6)
        let epoch = state.epoch
        try state.completeMove(id, nowMs: 7)
        #expect(state.epoch > epoch)
        #expect(replicas(state, 0) == ["n4:ready"])
        let done = try #require(state.moves[id])
        #expect(done.state == .done && done.recordsCopied == 10 && done.createdMs == 1 && done.updatedMs == 7)
        #expect(state.runningMove(collection: "c", shard: 0) == nil)
        try state.validate()
    }

    /// The janitor's rule: a replica is dropped only when the metadata records the
    /// decision (a failed or rolled-back move naming that incarnation as its target,
    /// a finished move naming it as its source, a deleted collection); any other
    /// replica the placement does not name is an orphan, kept.
    @Test func onlyRecordedDecisionsDropReplicas() throws {
        var state = try movingState()
        func decided(_ incarnation: UInt32, _ node: String, _ collection: String = "c", _ shard: UInt32 = 0, uid: String = "c-1") -> Bool {
            state.dropIsDecided(collection: collection, shard: shard, incarnation: incarnation, on: node, uid: uid)
        }
        func orphan(_ incarnation: UInt32, _ node: String, _ collection: String = "c", _ shard: UInt32 = 0) -> Bool {
            state.isOrphan(collection: collection, shard: shard, incarnation: incarnation, on: node)
        }
        #expect(!orphan(1, "n1") && !decided(1, "n1"))  // placed
        #expect(orphan(3, "n4") && !decided(3, "n4"))  // not placed, nothing decided: kept
        #expect(orphan(1, "n4", "gone", 0) && !decided(1, "n4", "gone", 0))  // unknown collection: kept
        #expect(orphan(1, "n4", "c", 9) && !decided(1, "n4", "c", 9))  // no such shard: kept
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 10, nowMs: 1, validateNow: true)
        #expect(!orphan(3, "n4"))  // pending: about to be created
        try state.startMove(id, nowMs: 2)
        #expect(!orphan(3, "n4"))  // being created, not placed yet
        try state.beginDualWrite(id, targetIncarnation: 3, sourceIncarnation: 1, nowMs: 3)
        #expect(!orphan(3, "n4") && !decided(3, "n4"))
        try state.rollBackMove(id, as: .failed, error: "target down", nowMs: 4)
        #expect(decided(3, "n4"))  // what the rollback could not drop
        #expect(!decided(4, "n4") && orphan(4, "n4"))  // another incarnation: not that decision
        #expect(!decided(1, "n1"))
        #expect(state.moves[id]?.targetIncarnation == 3)
        try state.removeCollection("c", nowMs: 5)
        #expect(decided(1, "n1") && decided(9, "n2", "c", 7))  // the collection's deletion is on record
        #expect(!decided(1, "n1", "other", 0))
        // Only that incarnation of the collection: a replica of "c" created again (another
        // uid), or one from before uids, is not decided by the deletion.
        #expect(!decided(1, "n1", uid: "c-2") && !decided(1, "n1", uid: ""))
    }

    @Test func invalidMovesAreRefusedWithTheirReason() throws {
        var state = try movingState()
        let before = state
        func code(_ body: (inout ClusterState) throws -> String) -> StatusCode? {
            var copy = state
            do { _ = try body(&copy); return nil } catch { return (error as? ShoalError)?.code }
        }
        #expect(code { try $0.addMove(collection: "x", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true) } == .notFound)
        #expect(code { try $0.addMove(collection: "c", shard: 7, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true) } == .notFound)
        #expect(code { try $0.addMove(collection: "c", shard: 0, from: "n1", to: "n9", points: 0, nowMs: 0, validateNow: true) } == .notFound)
        #expect(code { try $0.addMove(collection: "c", shard: 0, from: "n1", to: "n1", points: 0, nowMs: 0, validateNow: true) } == .invalidArgument)
        #expect(code { try $0.addMove(collection: "c", shard: 0, from: "n2", to: "n4", points: 0, nowMs: 0, validateNow: true) } == .failedPrecondition)
        try state.setNodeState("n4", .draining)
        #expect(code { try $0.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true) } == .failedPrecondition)
        try state.setNodeState("n4", .up)
        _ = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true)
        #expect(code { try $0.addMove(collection: "c", shard: 0, from: "n1", to: "n3", points: 0, nowMs: 0, validateNow: true) } == .failedPrecondition)
        #expect(state.collections == before.collections)
    }

    @Test func rollBackRestoresThePlacementUntilReadsSwitch() throws {
        var state = try movingState()
        let id = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 0, validateNow: true)
        try state.startMove(id, nowMs: 0)
        try state.beginDualWrite(id, targetIncarnation: 7, nowMs: 0)
        try state.setMovePhase(id, .catchUp, nowMs: 0)
        try state.rollBackMove(id, as: .rolledBack, error: "cancelled by the operator", nowMs: 9)
        #expect(replicas(state, 1) == ["n2:ready"])
        #expect(state.moves[id]?.state == .rolledBack && state.moves[id]?.error == "cancelled by the operator")

        let second = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 0, validateNow: true)
        try state.startMove(second, nowMs: 0)
        try state.beginDualWrite(second, targetIncarnation: 7, nowMs: 0)
        try state.setMovePhase(second, .catchUp, nowMs: 0)
        try state.switchReads(second, nowMs: 0)
        #expect(throws: ShoalError.self) { try state.rollBackMove(second, as: .failed, error: "x", nowMs: 0) }
        #expect(replicas(state, 1) == ["n2:retiring", "n4:ready"])
    }

    @Test func aPendingMoveThatCanNoLongerRunFailsToStart() throws {
        var state = try movingState()
        // A planned chain: shard 2 n3 → n4, then n4 → n1; the second validates when it starts.
        let first = try state.addMove(collection: "c", shard: 2, from: "n3", to: "n4", points: 0, nowMs: 0, validateNow: false)
        let second = try state.addMove(collection: "c", shard: 2, from: "n4", to: "n1", points: 0, nowMs: 0, validateNow: false)
        #expect(throws: ShoalError.self) { try state.startMove(second, nowMs: 0) }  // n4 holds nothing yet
        try state.startMove(first, nowMs: 0)
        #expect(throws: ShoalError.self) { try state.startMove(second, nowMs: 0) }  // shard 2 is moving
        try state.beginDualWrite(first, targetIncarnation: 7, nowMs: 0)
        try state.setMovePhase(first, .catchUp, nowMs: 0)
        try state.switchReads(first, nowMs: 0)
        try state.completeMove(first, nowMs: 0)
        try state.startMove(second, nowMs: 0)
        #expect(state.moves[second]?.state == .running)
    }

    @Test func removingANodeNeedsItEmptyOrForce() throws {
        var state = try movingState()
        #expect(throws: ShoalError.self) { try state.removeNode("n1", force: false) }
        try state.removeNode("n4", force: false)
        #expect(state.nodes["n4"]?.state == .removed)
        #expect(throws: ShoalError.self) { try state.removeNode("n4", force: false) }  // already gone
        // n1 holds shard 0's only replica: forcing it out loses data, refused unless accepted.
        let before = state
        #expect(throws: ShoalError.self) { try state.removeNode("n1", force: true) }
        #expect(state == before)
        try state.removeNode("n1", force: true, acceptDataLoss: true)
        #expect(replicas(state, 0).isEmpty)
        try state.readdNode(id: "n4", address: "127.0.0.1:7444")
        #expect(state.nodes["n4"] == NodeInfo(id: "n4", address: "127.0.0.1:7444", state: .up))
        #expect(throws: ShoalError.self) { try state.readdNode(id: "n2", address: "x:1") }
        try state.validate()
    }

    @Test func finishedMovesArePrunedOldestFirst() throws {
        var state = try movingState()
        for _ in 0..<(ClusterState.finishedMovesKept + 5) {
            let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true)
            try state.rollBackMove(id, as: .rolledBack, error: "", nowMs: 0)
        }
        #expect(state.moves.count == ClusterState.finishedMovesKept)
        #expect(state.moves["move-1"] == nil && state.moves["move-\(ClusterState.finishedMovesKept + 5)"] != nil)
    }

    @Test func aLongMoveThatFinishesLastIsKeptByPruning() throws {
        var state = try movingState()
        let long = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 0, validateNow: true)
        try state.startMove(long, nowMs: 0)
        for _ in 0..<(ClusterState.finishedMovesKept + 5) {
            let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 1, validateNow: true)
            try state.rollBackMove(id, as: .rolledBack, error: "", nowMs: 1)
        }
        try state.rollBackMove(long, as: .failed, error: "x", nowMs: 2)
        #expect(state.moves[long]?.state == .failed)  // the oldest number, but it finished last
        #expect(state.moves.count == ClusterState.finishedMovesKept)
    }

    @Test func aCancelledMoveCannotSwitchReadsAndCancelIsRefusedAfterIt() throws {
        var state = try movingState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true)
        #expect(throws: ShoalError.self) { try state.requestCancel(id, nowMs: 1) }  // pending: the scheduler rolls it back itself
        try state.startMove(id, nowMs: 1)
        try state.beginDualWrite(id, targetIncarnation: 7, nowMs: 2)
        try state.setMovePhase(id, .catchUp, nowMs: 3)
        try state.requestCancel(id, nowMs: 4)
        #expect(state.moves[id]?.cancelRequestedMs == 4)
        #expect(throws: ShoalError.self) { try state.switchReads(id, nowMs: 5) }
        #expect(replicas(state, 0) == ["n1:ready", "n4:catching_up"])

        let other = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 0, validateNow: true)
        try state.startMove(other, nowMs: 1)
        try state.beginDualWrite(other, targetIncarnation: 8, nowMs: 2)
        try state.setMovePhase(other, .catchUp, nowMs: 3)
        try state.switchReads(other, nowMs: 4)
        #expect(throws: ShoalError.self) { try state.requestCancel(other, nowMs: 5) }
    }

    @Test func deletingACollectionEndsItsMoves() throws {
        var state = try movingState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 0, nowMs: 0, validateNow: true)
        try state.startMove(id, nowMs: 1)
        try state.beginDualWrite(id, targetIncarnation: 7, nowMs: 2)
        let queued = try state.addMove(collection: "c", shard: 1, from: "n2", to: "n4", points: 0, nowMs: 3, validateNow: true)
        try state.removeCollection("c", nowMs: 9)
        for move in [id, queued] {
            #expect(state.moves[move]?.state == .failed && state.moves[move]?.error == "collection c was deleted")
        }
        // What the ended move would do next is refused: it stops.
        #expect(throws: ShoalError.self) { try state.setMovePhase(id, .catchUp, nowMs: 10) }
        try state.validate()
    }

    @Test func movesSurviveSaveAndLoadAndOldStatesLoadWithout() throws {
        var state = try movingState()
        let id = try state.addMove(collection: "c", shard: 0, from: "n1", to: "n4", points: 3, nowMs: 5, validateNow: true)
        try state.startMove(id, nowMs: 6)
        let bytes = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(ClusterState.self, from: bytes) == state)

        var object = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
        object["moves"] = nil
        object["nextMoveNumber"] = nil
        let old = try JSONDecoder().decode(ClusterState.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(old.moves.isEmpty && old.nextMoveNumber == 1 && old.collections == state.collections)
    }
}
