import EtcdProto
import EtcdTestSupport
import GRPCBridge
import Testing
import VectorCore

/// Keepalive pings: a channel to a server that stops answering (SIGSTOP: its
/// connection stays open) fails its calls within about time + timeout, not at their
/// deadline. The server is a real etcd (a separate process to pause), told to accept
/// pings this often. In `BridgeTests`, whose tests run one at a time (live counters).
extension BridgeTests {
    @Test func aKeepaliveChannelToAPausedServerFailsFast() async throws {
        try await BridgeTestGate.run {
            let etcd = try await EtcdTestServer(arguments: ["--grpc-keepalive-min-time", "100ms"])
            defer { etcd.stop() }
            try await callsWhilePaused(etcd)
            try await eventually("bridge objects released (\(BridgeDiagnostics.live()))") { BridgeDiagnostics.live().isEmpty }
        }
    }

    private func callsWhilePaused(_ etcd: EtcdTestServer) async throws {
        let plain = try Channel(target: etcd.endpoint)
        let pinging = try Channel(target: etcd.endpoint, keepalive: Channel.Keepalive(time: .milliseconds(500), timeout: .milliseconds(500)))
        for channel in [plain, pinging] { _ = try await grantLease(channel, ttl: 5) }  // both connected
        etcd.pause()
        defer { etcd.resume() }
        let grant = try Etcdserverpb_LeaseGrantRequest.with { $0.ttl = 5 }.serializedBytes() as [UInt8]
        let method = "/etcdserverpb.Lease/LeaseGrant"

        // Without keepalive a call waits out its whole timeout.
        var start = ContinuousClock.now
        let waited = await #expect(throws: ShoalError.self) {
            _ = try await plain.unary(method: method, request: grant, timeout: .seconds(3))
        }
        #expect(waited?.code == .deadlineExceeded && ContinuousClock.now - start >= .seconds(3))

        start = ContinuousClock.now
        let failed = await #expect(throws: ShoalError.self) {
            _ = try await pinging.unary(method: method, request: grant, timeout: .seconds(30))
        }
        #expect(failed?.code == .unavailable)
        #expect(ContinuousClock.now - start < .seconds(5), "took \(ContinuousClock.now - start)")

        etcd.resume()
        try await eventually("the channel answers again") { (try? await pinging.unary(method: method, request: grant, timeout: .seconds(2))) != nil }
    }
}
