@testable import Coordinator
import Logging
import ShoalProto
import ShoalRPC
import Synchronization
import Testing
import VectorCore

@Suite struct ReplicaReadTests {
    @Test func aSlowReplicaIsHedgedOnTheOther() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        fake.nodes["n1"]!.set(delay: .seconds(900))
        for _ in 0..<6 {
            // Without hedging a search that asked n1 first would wait out its deadline and fail.
            let reply = try await fake.search()
            #expect(reply.hits.map(\.id) == ["n2"])
        }
        #expect(fake.nodes["n1"]!.calls >= 2)  // asked first in turn, then hedged
        // The losing calls were cancelled: their completions end them on the node's count.
        let deadline = ContinuousClock.now + .seconds(120)
        while fake.health.outstanding("n1") != 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(fake.health.outstanding("n1") == 0)
    }

    @Test(arguments: [StatusCode.unavailable, .deadlineExceeded, .failedPrecondition, .aborted])
    func anErroringReplicaIsRetriedOnTheOther(_ code: StatusCode) async throws {
        let fake = try FakeCluster([["n1", "n2"]], options: FakeCluster.noHedging)
        fake.nodes["n1"]!.set(error: ShoalError(code, "cannot answer"))
        for _ in 0..<6 {  // answered within the 120 s deadline, so not by a hedge (600 s): retried at once
            #expect(try await fake.search().hits.map(\.id) == ["n2"])
            #expect(try await fake.count() == 10)
        }
        #expect(fake.nodes["n1"]!.calls >= 2)
    }

    @Test func countAndDescribeSumEveryShardFromTheReplicasThatAnswer() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n2", "n3"]])
        fake.nodes["n2"]!.set(error: ShoalError(.unavailable, "connection refused"))
        for _ in 0..<4 { #expect(try await fake.count() == 20) }
        let described = try await fake.service.describe(.with { $0.name = "c" }, state: fake.service.cluster.snapshot, deadline: .now + .seconds(120))
        #expect(described.shards.map(\.pointCount) == [10, 10] && described.pointCount == 20)
    }

    @Test func otherErrorsPassStraightThrough() async throws {
        // No hedging: on a busy machine a hedge could fire before the error comes back.
        let fake = try FakeCluster([["n1", "n2"]], options: FakeCluster.noHedging)
        for node in fake.nodes.values { node.set(error: ShoalError(.invalidArgument, "bad filter")) }
        let error = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(error == ShoalError(.invalidArgument, "bad filter"))
        #expect(fake.nodes["n1"]!.calls + fake.nodes["n2"]!.calls == 1)
    }

    @Test func aDownNodeIsSkippedUnlessAllAre() async throws {
        let fake = try FakeCluster([["n1", "n2"]], options: FakeCluster.noHedging)  // n1 is not even a hedge
        await fake.markDown("n1")
        #expect(fake.health.state(of: "n1") == .down)
        fake.nodes["n1"]!.set()  // it would answer, but is not asked
        let before = fake.nodes["n1"]!.calls
        for _ in 0..<6 { #expect(try await fake.search().hits.map(\.id) == ["n2"]) }
        #expect(fake.nodes["n1"]!.calls == before)

        await fake.markDown("n2")  // and it stays unable to answer
        #expect(fake.health.state(of: "n1") == .down && fake.health.state(of: "n2") == .down)
        for _ in 0..<4 { #expect(try await fake.search().hits.map(\.id) == ["n1"]) }  // all down: asked anyway
        #expect(fake.health.state(of: "n1") == .up)  // a data call succeeded
    }

    @Test func aShardWithoutAnAnsweringReplicaIsUnavailableOrMissing() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n3", "n2"]])
        fake.nodes["n1"]!.set(error: ShoalError(.unavailable, "connection refused"))
        fake.nodes["n2"]!.set(delay: .seconds(30))
        let error = await #expect(throws: ShoalError.self) { try await fake.search(timeout: .milliseconds(500)) }
        #expect(error?.code == .deadlineExceeded || error?.code == .unavailable)
        #expect(error?.message.contains("shard 0 of c") == true, "\(error?.message ?? "")")

        fake.nodes["n2"]!.set(error: ShoalError(.unavailable, "connection refused"))
        let unavailable = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(unavailable?.code == .unavailable)
        #expect(unavailable?.message.contains("shard 0 of c") == true)
        #expect(unavailable?.message.contains("node n1") == true && unavailable?.message.contains("node n2") == true)

        let partial = try await fake.search(allowPartial: true)
        #expect(partial.partial && partial.missingShards == [0])
        #expect(partial.hits.map(\.id) == ["n3"])
    }

    @Test func abortedFromEveryReplicaReachesThePlacementRefresh() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        for node in fake.nodes.values { node.set(error: ShoalError(.aborted, "fenced past epoch")) }
        let error = await #expect(throws: ShoalError.self) { try await fake.search(allowPartial: true) }
        #expect(error?.code == .aborted)
    }

    @Test func healthGoesUpSuspectDownUp() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        let health = fake.health
        let n1 = fake.service.cluster.snapshot.nodes["n1"]!
        #expect(health.state(of: "unknown") == .up)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .up)
        fake.nodes["n1"]!.set(error: ShoalError(.unavailable, "stopped"))
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .suspect)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .suspect && health.downSince("n1") == nil)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .down)
        let since = try #require(health.downSince("n1"))
        await health.checkOnce([n1])
        #expect(health.downSince("n1") == since)  // down since the first time
        fake.nodes["n1"]!.set()
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .up && health.downSince("n1") == nil)

        health.reportFailure("n1")
        #expect(health.state(of: "n1") == .suspect)
        health.reportSuccess("n1", latency: .milliseconds(1))
        #expect(health.state(of: "n1") == .up)
        health.reportFailure("n9")  // a node never checked
        #expect(health.state(of: "n9") == .suspect)
    }

    @Test func theMonitorChecksInTheBackground() async throws {
        var options = NodeHealthMonitor.Options()
        options.interval = .milliseconds(10)
        options.timeout = .milliseconds(50)
        let fake = try FakeCluster([["n1", "n2"]], options: options)
        let cluster = fake.service.cluster
        fake.nodes["n2"]!.set(delay: .seconds(30))  // paused: every check times out
        fake.health.start { Array(cluster.snapshot.nodes.values) }
        defer { fake.health.stop() }
        let deadline = ContinuousClock.now + .seconds(30)
        while fake.health.state(of: "n2") != .down, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(fake.health.state(of: "n2") == .down)
        #expect(fake.health.state(of: "n1") == .up)
    }

    @Test func hedgeDelayIsTheRecentP95WithinBounds() throws {
        let health = NodeHealthMonitor(directory: NodeDirectory { _ in FakeNode("x") })
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(50))  // no samples yet
        for ms in 1...100 { health.reportSuccess("n1", latency: .milliseconds(ms)) }
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(95))
        for _ in 0..<256 { health.reportSuccess("n1", latency: .microseconds(10)) }  // the ring forgets the old ones
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(5))
        for _ in 0..<256 { health.reportSuccess("n2", latency: .seconds(20)) }
        #expect(health.hedgeDelay(for: "n2") == .seconds(1))
    }

    @Test func replicasAreAskedLeastLoadedFirstThenInTurn() {
        let health = NodeHealthMonitor(directory: NodeDirectory { _ in FakeNode("x") })
        let ids = ["a", "b", "c"]
        let firsts = (0..<6).map { _ in health.preferred(ids) { $0 }[0] }
        #expect(Set(firsts) == Set(ids))  // ties in turn
        health.begin("a")
        health.begin("b")
        #expect((0..<6).allSatisfy { _ in health.preferred(ids) { $0 }[0] == "c" })
        health.end("a")
        health.end("b")
    }
}
