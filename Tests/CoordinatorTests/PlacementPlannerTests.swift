import Coordinator
import Testing
import VectorCore

func nodes(_ count: Int) -> [NodeInfo] {
    (1...count).map { NodeInfo(id: "n\($0)", address: "127.0.0.1:\(7000 + $0)") }
}

@Suite struct PlacementPlannerTests {
    @Test func defaultShardCountIsTwoPerNode() {
        #expect(PlacementPlanner.defaultShardCount(liveNodes: 0) == 1)
        #expect(PlacementPlanner.defaultShardCount(liveNodes: 1) == 2)
        #expect(PlacementPlanner.defaultShardCount(liveNodes: 3) == 6)
        #expect(PlacementPlanner.defaultShardCount(liveNodes: 1000) == 64)
    }

    @Test func roundRobinOnAnEmptyCluster() throws {
        let plan = try PlacementPlanner.plan(shardCount: 6, replicationFactor: 1, nodes: nodes(3))
        #expect(plan.map(\.shardId) == Array(0..<6))
        #expect(plan.map { $0.replicas.map(\.nodeId) } == [["n1"], ["n2"], ["n3"], ["n1"], ["n2"], ["n3"]])
        #expect(plan.allSatisfy { $0.replicas.allSatisfy { $0.state == .ready } })
    }

    @Test func replicasOnDistinctNodesAndBalanced() throws {
        let plan = try PlacementPlanner.plan(shardCount: 7, replicationFactor: 3, nodes: nodes(4))
        var counts: [String: Int] = [:]
        for shard in plan {
            #expect(Set(shard.replicas.map(\.nodeId)).count == 3)
            for r in shard.replicas { counts[r.nodeId, default: 0] += 1 }
        }
        #expect(counts.values.reduce(0, +) == 21)
        #expect(counts.values.max()! - counts.values.min()! <= 1)
    }

    @Test func fillsTheLeastLoadedNodesFirst() throws {
        let plan = try PlacementPlanner.plan(shardCount: 4, replicationFactor: 1, nodes: nodes(3),
                                             load: ["n1": 5, "n2": 2, "n3": 0])
        #expect(plan.map { $0.replicas[0].nodeId } == ["n3", "n3", "n2", "n3"])
    }

    @Test func skipsNodesThatAreNotUp() throws {
        var all = nodes(4)
        all[0].state = .draining
        all[2].state = .removed
        let plan = try PlacementPlanner.plan(shardCount: 4, replicationFactor: 1, nodes: all)
        #expect(Set(plan.map { $0.replicas[0].nodeId }) == ["n2", "n4"])
    }

    @Test func deterministicWhateverTheNodeOrder() throws {
        let a = try PlacementPlanner.plan(shardCount: 5, replicationFactor: 2, nodes: nodes(4))
        let b = try PlacementPlanner.plan(shardCount: 5, replicationFactor: 2, nodes: nodes(4).reversed())
        #expect(a == b)
    }

    @Test func errors() {
        #expect(throws: ShoalError(.failedPrecondition, "no live nodes to place shards on")) {
            try PlacementPlanner.plan(shardCount: 2, replicationFactor: 1, nodes: [])
        }
        let error = #expect(throws: ShoalError.self) {
            try PlacementPlanner.plan(shardCount: 2, replicationFactor: 3, nodes: nodes(2))
        }
        #expect(error?.code == .failedPrecondition)
        #expect(throws: ShoalError.self) { try PlacementPlanner.plan(shardCount: 0, replicationFactor: 1, nodes: nodes(2)) }
    }
}
