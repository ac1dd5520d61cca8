import Etcd
import EtcdTestSupport
import GRPCBridge
import Testing
import VectorCore

/// Endpoint lists, failover and an unreachable etcd.
@Suite struct EndpointTests {
    @Test func parsesEndpointLists() throws {
        #expect(try EtcdClient.parseEndpoints("127.0.0.1:2379") == ["127.0.0.1:2379"])
        #expect(try EtcdClient.parseEndpoints("h1:1, h2:2 ,[::1]:3") == ["h1:1", "h2:2", "[::1]:3"])
        #expect(try EtcdClient.parseEndpoints("http://h1:1,http://h2:2/") == ["h1:1", "h2:2"])  // as etcdctl takes them
        for bad in ["", " ", "h1", "h1:", ":80", "h1:0", "h1:70000", "h1:1,,h2:2", "https://h1:1", "h1:x"] {
            let error = #expect(throws: ShoalError.self, "'\(bad)'") { try EtcdClient.parseEndpoints(bad) }
            #expect(error?.code == .invalidArgument)
        }
        #expect(throws: ShoalError.self) { try EtcdClient(endpoints: []) }
        #expect(throws: ShoalError.self) { try EtcdClient(endpoints: ["127.0.0.1:1", "nope"]) }
    }

    @Test func unreachableEtcdIsUnavailableWithinTheCallTimeout() async throws {
        try await BridgeTestGate.run {
            let dead = [try freeLoopbackPort(), try freeLoopbackPort()].map { "127.0.0.1:\($0)" }
            let client = try EtcdClient(endpoints: dead, callTimeout: .seconds(2))
            let start = ContinuousClock.now
            let error = await #expect(throws: ShoalError.self) { _ = try await client.get("/k") }
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(error?.code == .unavailable)
            #expect(error?.message.hasPrefix("etcd at \(dead[0]),\(dead[1]) is unavailable: ") == true)
            let put = await #expect(throws: ShoalError.self) { try await client.put("/k", [1]) }
            #expect(put?.code == .unavailable)
        }
    }

    @Test func pausedEtcdIsUnavailableAfterTheCallTimeout() async throws {
        try await withEtcd(callTimeout: .milliseconds(500)) { etcd, client in
            try await client.put("/k", [1])
            etcd.pause()
            // The first call that fails is the one measured (under load a call may still
            // be answered while the stop signal is being delivered).
            var failure: ShoalError?
            var took = Duration.zero
            for _ in 0..<20 where failure == nil {
                let start = ContinuousClock.now
                do { _ = try await client.get("/k") } catch let error as ShoalError { failure = error }
                took = ContinuousClock.now - start
                if failure == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(failure?.code == .unavailable)
            #expect(took < .seconds(3))
            // A write that timed out may have been applied: its own status, not a retry.
            let put = await #expect(throws: ShoalError.self) { try await client.put("/k", [2]) }
            #expect(put?.code == .deadlineExceeded)
            etcd.resume()
            try await eventually("etcd answers again") { (try? await client.get("/k")) != nil }
        }
    }

    @Test func firstEndpointDeadSecondServes() async throws {
        try await withEtcd { etcd, _ in
            let dead = "127.0.0.1:\(try freeLoopbackPort())"
            let client = try EtcdClient(endpoints: [dead, etcd.endpoint], callTimeout: .seconds(2))
            #expect(client.endpoints == [dead, etcd.endpoint])
            try await client.put("/k", "v".bytes)
            #expect(try await client.get("/k").kv?.value == "v".bytes)
            #expect(try await client.getPrefix("/").kvs.count == 1)
        }
    }

    @Test func streamsMoveOffADeadFirstEndpoint() async throws {
        try await withEtcd { etcd, _ in
            let dead = "127.0.0.1:\(try freeLoopbackPort())"
            let client = try EtcdClient(endpoints: [dead, etcd.endpoint], callTimeout: .seconds(2))
            let lease = try await client.grantLease(ttl: 30)
            #expect(try await EtcdClient(endpoints: [dead, etcd.endpoint]).keepAliveOnce(lease) > 0)
            let keeper = try EtcdClient(endpoints: [dead, etcd.endpoint]).keepAlive(lease, ttl: .seconds(30), every: .milliseconds(100))
            let watch = Collector(try EtcdClient(endpoints: [dead, etcd.endpoint]).watch(prefix: "/s/", after: 0))
            try await client.put("/s/1", [1])
            try await eventually("the watch moved to the live member") { watch.batches.count == 1 }
            #expect(keeper.isAlive)
            keeper.stop()
            watch.stop()
        }
    }
}

/// A three-member etcd cluster with one member frozen (SIGSTOP): its connections stay
/// open but it answers nothing.
@Suite struct ClusterFaultTests {
    @Test func watchKeeperAndReadsMoveOffAFrozenMember() async throws {
        try await BridgeTestGate.run {
            let cluster = try await EtcdTestCluster(size: 3)
            defer { cluster.stop() }
            try await frozenMember(cluster)
            try await eventually("bridge objects released") { BridgeDiagnostics.live().isEmpty }
        }
    }

    private func frozenMember(_ cluster: EtcdTestCluster) async throws {
        let client = try EtcdClient(endpoints: cluster.endpoints, callTimeout: .milliseconds(500))
        let writer = try EtcdClient(endpoints: Array(cluster.endpoints.dropFirst()), callTimeout: .seconds(2))
        let start = try await client.put("/f/0", [0])
        let lease = try await client.grantLease(ttl: 10)
        let keeper = client.keepAlive(lease, ttl: .seconds(10), every: .milliseconds(300))
        let watch = Collector(client.watch(prefix: "/f/", after: start))
        try await client.put("/f/1", [1])
        try await eventually("the first put") { watch.batches.count == 1 }

        cluster.members[0].pause()  // the member every stream of `client` uses
        // Create-if-absent, so a retried write that was applied once is not applied twice.
        for key in ["/f/2", "/f/3"] {
            try await eventually(timeout: .seconds(20), "\(key) written") {
                (try? await writer.txn(if: [.createRevision(key, equals: 0)], then: [.put(key, [2])])) != nil
            }
        }
        try await eventually(timeout: .seconds(20), "the watch moved on") { watch.batches.count >= 3 }
        #expect(watch.batches.map { $0.events[0].kv.key } == ["/f/1", "/f/2", "/f/3"])
        #expect(try await client.get("/f/3").kv != nil)
        #expect(keeper.isAlive)
        #expect(try await writer.keepAliveOnce(lease) > 0)
        cluster.members[0].resume()
        keeper.stop()
        watch.stop()
        try await eventually("the watch finished") { watch.finished }
    }
}
