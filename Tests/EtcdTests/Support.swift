import Etcd
import EtcdTestSupport
import GRPCBridge
import VectorCore

/// Starts a fresh etcd, runs `body` with it and a client to it, stops etcd, and checks
/// that every bridge object the client made is released (through `BridgeTestGate`,
/// since the counters are process-wide).
func withEtcd(
    callTimeout: Duration = .seconds(5),
    _ body: (EtcdTestServer, EtcdClient) async throws -> Void
) async throws {
    try await BridgeTestGate.run {
        let etcd = try await EtcdTestServer()
        do {
            let client = try EtcdClient(endpoints: [etcd.endpoint], callTimeout: callTimeout)
            try await body(etcd, client)
        } catch {
            etcd.stop()
            throw error
        }
        etcd.stop()
        try await eventually("bridge objects released") { BridgeDiagnostics.live().isEmpty }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
    timeout: Duration = .seconds(10), _ what: String, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw EtcdTestServerError("timed out waiting for: \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
