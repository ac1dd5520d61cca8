@testable import Coordinator
import ShoalProto
import ShoalRPC
import Testing
import VectorCore

/// The read path through `NodeFanOut`: one call per node, per-shard reports retried on
/// the shard's other replicas, partial results and the global merge, over fake nodes.
@Suite struct NodeFanOutTests {
    /// Shard `s` answers one hit "s<s>" at distance `s` and a count of `s + 1`.
    static func numbered(_ shard: UInt32) -> FakeNode.ShardData {
        FakeNode.ShardData(hits: [hit("s\(shard)", Float(shard))], count: UInt64(shard) + 1)
    }

    static func hit(_ id: String, _ distance: Float) -> Shoal_V1_ScoredPoint {
        .with { $0.id = id; $0.distance = distance }
    }

    /// Every node answers shards `0..<shards` as `numbered` says.
    static func numbered(_ fake: FakeCluster, shards: UInt32) {
        for node in fake.nodes.values {
            node.update { for s in 0..<shards { $0.shards[s] = numbered(s) } }
        }
    }

    /// Each node's calls, as the shards each covered.
    static func shardsAsked(_ fake: FakeCluster) -> [String: [[UInt32]]] {
        fake.recorded.mapValues { $0.map(\.shards) }
    }

    /// Polls until `node` has `outstanding` requests in flight (a cancelled call has
    /// completed), at most 120 s.
    static func settled(_ fake: FakeCluster, _ node: String, outstanding: Int = 0) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(120)
        while fake.health.outstanding(node) != outstanding, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        return fake.health.outstanding(node) == outstanding
    }

    // MARK: one call per node

    @Test func eachNodeIsAskedOnceForAllItsShards() async throws {
        let fake = try FakeCluster([["n1"], ["n2"], ["n3"], ["n1"], ["n2"], ["n3"]], options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        let perNode: [String: [[UInt32]]] = ["n1": [[0, 3]], "n2": [[1, 4]], "n3": [[2, 5]]]

        #expect(try await fake.search().hits.map(\.id) == ["s0", "s1", "s2", "s3", "s4", "s5"])
        #expect(Self.shardsAsked(fake) == perNode)
        fake.forgetCalls()
        #expect(try await fake.count() == 21)
        #expect(Self.shardsAsked(fake) == perNode)
        fake.forgetCalls()
        #expect(try await fake.describe().pointCount == 21)
        #expect(Self.shardsAsked(fake) == perNode)
    }

    @Test func replicatedShardsAreGroupedIntoOneCallPerNodeChosen() async throws {
        let fake = try FakeCluster(Array(repeating: ["n1", "n2", "n3"], count: 6), options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        for _ in 0..<6 {
            fake.forgetCalls()
            #expect(try await fake.search().hits.count == 6)
            #expect(fake.nodes.values.allSatisfy { $0.calls <= 1 })
            let calls = fake.recorded.values.flatMap { $0 }
            #expect(calls.allSatisfy { Set($0.shards).count == $0.shards.count })  // distinct within a call
            #expect(calls.flatMap(\.shards).sorted() == Array(0..<6))  // every shard once in total
        }
    }

    @Test func twoReplicasOnThreeNodesAreReadFromTwoNodesTakingTurns() async throws {
        // The launch script's layout: 6 shards, RF 2, every pair of nodes shares two.
        let pairs = [["n1", "n2"], ["n3", "n1"], ["n2", "n3"], ["n1", "n2"], ["n3", "n1"], ["n2", "n3"]]
        let fake = try FakeCluster(pairs, options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        var used: [String: Int] = [:]
        for _ in 0..<6 {
            fake.forgetCalls()
            #expect(try await fake.search().hits.count == 6)
            let asked = Self.shardsAsked(fake).filter { !$0.value.isEmpty }
            #expect(asked.count == 2, "\(asked)")  // any two nodes cover the six shards
            #expect(asked.values.allSatisfy { $0.count == 1 && $0[0].count == 3 }, "\(asked)")  // split evenly
            for node in asked.keys { used[node, default: 0] += 1 }
        }
        #expect(used == ["n1": 4, "n2": 4, "n3": 4])  // in turn
    }

    @Test func theCoverLeavesADownNodeOut() async throws {
        let pairs = [["n1", "n2"], ["n3", "n1"], ["n2", "n3"], ["n1", "n2"], ["n3", "n1"], ["n2", "n3"]]
        let fake = try FakeCluster(pairs, options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        await fake.markDown("n2")
        for _ in 0..<3 {
            fake.forgetCalls()
            #expect(try await fake.search().hits.count == 6)
            #expect(Self.shardsAsked(fake)["n2", default: []].isEmpty)
        }
    }

    @Test func readsOnlyBusyNodesCouldAnswerAreRefusedWithoutAsking() async throws {
        var options = FakeCluster.noHedging
        options.busyWindow = .seconds(600)  // longer than the test: the marks stay
        let fake = try FakeCluster([["n1", "n2"], ["n1", "n2"], ["n3"]], options: options)
        Self.numbered(fake, shards: 3)
        for node in ["n1", "n2"] { fake.nodes[node]!.set(error: .fullQueue(8)) }
        let first = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(first?.code == .resourceExhausted)
        #expect(first?.message.hasPrefix("busy:") == true)
        fake.forgetCalls()
        // n1 and n2 are marked busy: shards 0 and 1 have no other replica, so the next
        // read is refused here, and no node (not even n3) is asked.
        let second = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(second?.code == .resourceExhausted)
        #expect(second?.message.contains("refused a read as busy") == true)
        #expect(fake.recorded.values.allSatisfy { $0.isEmpty })
    }

    @Test func aBusyMarkLastsTheWindowOnly() async throws {
        var options = FakeCluster.noHedging
        options.busyWindow = .milliseconds(1)
        let fake = try FakeCluster([["n1"]], options: options)
        Self.numbered(fake, shards: 1)
        fake.nodes["n1"]!.set(error: .fullQueue(8))
        await #expect(throws: ShoalError.self) { try await fake.search() }
        fake.nodes["n1"]!.set()
        let deadline = ContinuousClock.now + .seconds(60)
        while fake.health.busy(["n1"]) == ["n1"], ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(try await fake.search().hits.map(\.id) == ["s0"])  // asked again once the window passed
    }

    // MARK: the global merge

    /// Three nodes, one shard each. Ties at 0.2 order by UTF-8 bytes: "Z" (5A), "e\u{301}"
    /// (65 CC 81), "p" (70), "\u{e9}" (C3 A9); `String` calls the two é equal and
    /// orders both after "p". "p" comes from two nodes; the better (0.2) stays.
    static func mergeCluster() throws -> FakeCluster {
        let fake = try FakeCluster([["n1"], ["n2"], ["n3"]], options: FakeCluster.noHedging)
        fake.nodes["n1"]!.update { $0.shards[0] = .init(hits: [hit("a", 0.1), hit("p", 0.3), hit("x", 0.6)]) }
        fake.nodes["n2"]!.update { $0.shards[1] = .init(hits: [hit("\u{e9}", 0.2), hit("p", 0.2), hit("b", 0.5)]) }
        fake.nodes["n3"]!.update { $0.shards[2] = .init(hits: [hit("e\u{301}", 0.2), hit("Z", 0.2), hit("c", 0.7)]) }
        return fake
    }

    /// Ids as bytes: `String ==` would call "\u{e9}" and "e\u{301}" equal.
    static func bytes(_ hits: [Shoal_V1_ScoredPoint]) -> [[UInt8]] { hits.map { Array($0.id.utf8) } }
    static func bytes(_ ids: [String]) -> [[UInt8]] { ids.map { Array($0.utf8) } }

    @Test func theMergeOrdersByDistanceThenIdBytesAndKeepsTheBestCopy() async throws {
        let fake = try Self.mergeCluster()
        let all = try await fake.search().hits
        #expect(Self.bytes(all) == Self.bytes(["a", "Z", "e\u{301}", "p", "\u{e9}", "b", "x", "c"]))
        #expect(all.map(\.distance) == [0.1, 0.2, 0.2, 0.2, 0.2, 0.5, 0.6, 0.7])  // "p" at its better 0.2
    }

    @Test(arguments: [(k: UInt32(3), offset: UInt32(2)), (1, 4), (2, 6), (5, 0), (4, 7)])
    func kAndOffsetCutTheGlobalOrder(_ k: UInt32, _ offset: UInt32) async throws {
        let fake = try Self.mergeCluster()
        let order = ["a", "Z", "e\u{301}", "p", "\u{e9}", "b", "x", "c"]
        let page = try await fake.search(k: k, offset: offset).hits
        // Each node is asked for k + offset: with only k, (1, 4) would see n1's "a", n2's "p"
        // and n3's "Z" and find nothing past them.
        #expect(Self.bytes(page) == Self.bytes(Array(order.dropFirst(Int(offset)).prefix(Int(k)))))
    }

    // MARK: retries

    @Test(arguments: [StatusCode.failedPrecondition, .aborted])
    func aShardsReportFailureIsAskedOfItsOtherReplicaAlone(_ code: StatusCode) async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n1", "n2"], ["n1", "n2"]], options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 3)
        fake.nodes["n1"]!.update { $0.shardErrors[1] = ShoalError(code, "shard 1 cannot answer here") }
        let busy = fake.preferring("n1")
        defer { fake.release(busy) }

        let reply = try await fake.search(explain: true)
        #expect(reply.hits.map(\.id) == ["s0", "s1", "s2"])
        #expect(reply.explain.map(\.nodeID) == ["n1", "n2", "n1"])
        #expect(Self.shardsAsked(fake) == ["n1": [[0, 1, 2]], "n2": [[1]], "n3": []])

        fake.forgetCalls()
        #expect(try await fake.count() == 6)
        #expect(Self.shardsAsked(fake) == ["n1": [[0, 1, 2]], "n2": [[1]], "n3": []])
    }

    @Test func aNodeThatCannotAnswerHasItsShardsRegroupedOnTheirNextReplicas() async throws {
        let placement = [["n1", "n2"], ["n1", "n2"], ["n1", "n2"], ["n1", "n3"], ["n1", "n3"], ["n1", "n3"]]
        let fake = try FakeCluster(placement, options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        fake.nodes["n1"]!.set(error: ShoalError(.unavailable, "connection refused"))
        let busy = fake.preferring("n1")
        defer { fake.release(busy) }

        let reply = try await fake.search(explain: true)
        #expect(reply.hits.map(\.id) == ["s0", "s1", "s2", "s3", "s4", "s5"])
        #expect(reply.explain.map(\.nodeID) == ["n2", "n2", "n2", "n3", "n3", "n3"])
        #expect(Self.shardsAsked(fake) == ["n1": [[0, 1, 2, 3, 4, 5]], "n2": [[0, 1, 2]], "n3": [[3, 4, 5]]])
    }

    // MARK: failures

    @Test func allowPartialListsTheMissingShardsAscendingAndMergesTheRest() async throws {
        let fake = try FakeCluster([["n1"], ["n2"], ["n3"], ["n1"], ["n2"], ["n3"]], options: FakeCluster.noHedging)
        Self.numbered(fake, shards: 6)
        fake.nodes["n2"]!.set(error: ShoalError(.unavailable, "connection refused"))  // shards 1 and 4
        fake.nodes["n3"]!.update { $0.shardErrors[5] = ShoalError(.unavailable, "shard 5 is loading") }

        let partial = try await fake.search(allowPartial: true)
        #expect(partial.partial && partial.missingShards == [1, 4, 5])
        #expect(partial.hits.map(\.id) == ["s0", "s2", "s3"])
        let counted = try await fake.count(allowPartial: true)
        #expect(counted.partial && counted.missingShards == [1, 4, 5] && counted.count == 1 + 3 + 4)

        let error = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("shard 1 of c") == true, "\(error?.message ?? "")")
        let again = try await fake.search(allowPartial: true)
        #expect(again.missingShards == [1, 4, 5] && again.hits.count == 3)  // the same again after a failed read
    }

    @Test(arguments: [StatusCode.invalidArgument, .resourceExhausted])
    func aShardErrorNoReplicaCanCureFailsTheRead(_ code: StatusCode) async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n1", "n2"]], options: FakeCluster.noHedging)
        fake.nodes["n1"]!.update { $0.shardErrors[1] = ShoalError(code, "shard 1 refused") }
        let busy = fake.preferring("n1")
        defer { fake.release(busy) }

        for allowPartial in [false, true] {
            let error = await #expect(throws: ShoalError.self) { try await fake.search(allowPartial: allowPartial) }
            #expect(error == ShoalError(code, "shard 1 refused"))
            let counted = await #expect(throws: ShoalError.self) { try await fake.count(allowPartial: allowPartial) }
            #expect(counted == ShoalError(code, "shard 1 refused"))
        }
        #expect(fake.nodes["n2"]!.calls == 0)  // not retried
    }

    /// A shard error ends the read while a lower shard is still being asked: the read
    /// fails with that error, not with the lower shard's "ended before it answered".
    @Test func aShardErrorIsTheReadsErrorWhileLowerShardsAreInFlight() async throws {
        let fake = try FakeCluster([["n1"], ["n2"]], options: FakeCluster.noHedging)
        fake.nodes["n1"]!.update { $0.holdUntil = { false } }  // answers only when its deadline passes
        fake.nodes["n2"]!.update { $0.shardErrors[1] = ShoalError(.invalidArgument, "shard 1 refused") }
        for allowPartial in [false, true] {
            let error = await #expect(throws: ShoalError.self) { try await fake.search(allowPartial: allowPartial) }
            #expect(error == ShoalError(.invalidArgument, "shard 1 refused"))
        }
        #expect(try await Self.settled(fake, "n1"))  // the held calls were cancelled
    }

    /// The read ends (shard 1 refused) while the hedge to n2 is still inside `start`: that
    /// call is cancelled once its start returns, not left running to its deadline.
    @Test func aCallStillStartingWhenTheReadEndsIsCancelled() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n3"]], options: FakeCluster.fastHedging)
        let (n2, n3) = (fake.nodes["n2"]!, fake.nodes["n3"]!)
        fake.nodes["n1"]!.update { $0.holdUntil = { false } }
        n2.update {
            $0.holdUntil = { false }
            $0.holdStartUntil = { n3.completed >= 1 }
        }
        n3.update {
            $0.holdUntil = { n2.started >= 1 }
            $0.shardErrors[1] = ShoalError(.invalidArgument, "shard 1 refused")
        }
        let busy = fake.preferring("n1")  // shard 0 asks n1 first, n2 as the hedge
        let error = await #expect(throws: ShoalError.self) { try await fake.search(timeout: .seconds(3600)) }
        #expect(error == ShoalError(.invalidArgument, "shard 1 refused"))
        fake.release(busy)
        #expect(n2.calls == 1)
        #expect(try await Self.settled(fake, "n1"))
        #expect(try await Self.settled(fake, "n2"))
    }

    // MARK: counts

    /// n1 holds shards 0 and 1 and answers only after the hedge: shard 0 from n2, shard 1
    /// (whose other replica, on n3, fails) from n1, whose reply answers shard 0 again.
    static func hedgedTwice() throws -> FakeCluster {
        let fake = try FakeCluster([["n1", "n2"], ["n1", "n3"]], options: FakeCluster.fastHedging)
        for node in fake.nodes.values {
            node.update {
                $0.shards[0] = .init(hits: [hit("zero", 0.5)], count: 7)
                $0.shards[1] = .init(hits: [hit("one", 0.25)], count: 5)
            }
        }
        let (n2, n3) = (fake.nodes["n2"]!, fake.nodes["n3"]!)
        n3.set(error: ShoalError(.unavailable, "connection refused"))
        fake.nodes["n1"]!.update { $0.holdUntil = { n2.completed >= 1 && n3.completed >= 1 } }
        return fake
    }

    @Test func aCountTakesEachShardOnceWhenTwoNodesAnswerIt() async throws {
        let fake = try Self.hedgedTwice()
        let busy = fake.preferring("n1")
        defer { fake.release(busy) }
        #expect(try await fake.count() == 7 + 5)
        #expect(Self.shardsAsked(fake) == ["n1": [[0, 1]], "n2": [[0]], "n3": [[1]]])
    }

    @Test func aSearchTakesEachShardOnceWhenTwoNodesAnswerIt() async throws {
        let fake = try Self.hedgedTwice()
        let busy = fake.preferring("n1")
        defer { fake.release(busy) }
        let reply = try await fake.search(explain: true)
        #expect(reply.hits.map(\.id) == ["one", "zero"])  // "zero" came from n1 and from n2
        #expect(reply.explain.map(\.nodeID) == ["n2", "n1"])
    }

    @Test func describeCountsEachShard() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n2", "n3"], ["n3", "n1"]])
        Self.numbered(fake, shards: 3)
        let described = try await fake.describe()
        #expect(described.shards.map(\.shardID) == [0, 1, 2])
        #expect(described.shards.map(\.pointCount) == [1, 2, 3] && described.pointCount == 6)
    }

    // MARK: explain

    @Test func explainReportsEachAnsweredShardAsItsNodeDid() async throws {
        let fake = try FakeCluster([["n1"], ["n2"], ["n3"]], options: FakeCluster.noHedging)
        let reports: [(UInt32, String, Shoal_V1_SearchStrategy, UInt64, UInt64)] =
            [(0, "n1", .hnsw, 120, 3), (1, "n2", .exactFiltered, 40, 0), (2, "n3", .hnswFiltered, 9, 9)]
        for (shard, node, strategy, distances, unindexed) in reports {
            fake.nodes[node]!.update {
                $0.shards[shard] = .init(hits: [Self.hit("s\(shard)", 1)], strategy: strategy,
                                         distancesComputed: distances, unindexedScanned: unindexed)
            }
        }
        let reply = try await fake.search(explain: true)
        #expect(reply.explain == reports.map { shard, node, strategy, distances, unindexed in
            .with {
                $0.shardID = shard
                $0.nodeID = node
                $0.strategy = strategy
                $0.distancesComputed = distances
                $0.unindexedScanned = unindexed
            }
        })
        #expect(try await fake.search().explain.isEmpty)  // only when asked

        fake.nodes["n3"]!.set(error: ShoalError(.unavailable, "connection refused"))
        let partial = try await fake.search(explain: true, allowPartial: true)
        #expect(partial.explain.map(\.shardID) == [0, 1])  // the missing shard has no report
    }

    // MARK: get

    @Test func aGetAsksEachShardForItsIdsAndAnswersInRequestOrder() async throws {
        let fake = try FakeCluster([["n1"], ["n2"], ["n3"], ["n1"]], options: FakeCluster.noHedging)
        let router = ShardRouter(shardCount: 4)
        // Ids of every shard but 2, so n3 is not asked.
        let held = (0..<40).map { "point-\($0 * 7)" }.filter { router.shard(for: $0) != 2 }.prefix(12)
        let gone = (0..<40).map { "gone-\($0)" }.filter { router.shard(for: $0) != 2 }.prefix(3)
        for node in fake.nodes.values {
            node.update { for id in held { $0.points[id] = .with { $0.id = id; $0.vector = [1, 2] } } }
        }
        let ids: [String] = (Array(held.prefix(4)) + [gone[gone.startIndex]] + Array(held.dropFirst(4)) + Array(gone.dropFirst())).reversed()

        let reply = try await fake.get(ids)
        #expect(reply.points.map(\.id) == ids.filter { !$0.hasPrefix("gone") })
        #expect(reply.missingIds == ids.filter { $0.hasPrefix("gone") })

        #expect(fake.nodes["n3"]!.calls == 0)
        #expect(fake.nodes["n1"]!.recorded.map(\.shards) == [[0, 3]] && fake.nodes["n2"]!.recorded.map(\.shards) == [[1]])
        let reads = fake.recorded.values.flatMap { $0 }.flatMap(\.reads)
        for read in reads {
            #expect(read.ids == ids.filter { router.shard(for: $0) == read.shardID })  // its own ids, in request order
        }
        #expect(reads.flatMap(\.ids).sorted() == ids.sorted())  // each id asked once
    }
}
