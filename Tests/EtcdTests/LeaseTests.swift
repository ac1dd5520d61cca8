import Etcd
import Testing
import VectorCore

/// Leases: grant, revoke, expiry and keepalive against a real etcd.
@Suite struct LeaseTests {
    @Test func revokingALeaseDeletesItsKeys() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 30)
            #expect(lease != 0)
            try await client.put("/owned", [1], lease: lease)
            #expect(try await client.get("/owned").kv?.lease == lease)
            try await client.revokeLease(lease)
            #expect(try await client.get("/owned").kv == nil)
            let error = await #expect(throws: ShoalError.self) { try await client.revokeLease(lease) }
            #expect(error?.code == .notFound)
        }
    }

    @Test func aKeyWithAnExpiredLeaseDisappears() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 2)
            try await client.put("/ephemeral", [1], lease: lease)
            try await client.put("/durable", [2])
            try await eventually(timeout: .seconds(10), "the leased key expired") {
                try await client.get("/ephemeral").kv == nil
            }
            #expect(try await client.get("/durable").kv?.value == [2])
        }
    }
}

/// Keepalive rounds and the background keeper.
@Suite struct KeepAliveTests {
    @Test func keepAliveOnceAnswersTheTTLAndNotFoundWhenGone() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 30)
            let ttl = try await client.keepAliveOnce(lease)
            #expect((25...30).contains(ttl))
            try await client.revokeLease(lease)
            let error = await #expect(throws: ShoalError.self) { _ = try await client.keepAliveOnce(lease) }
            #expect(error?.code == .notFound)
        }
    }

    @Test func aKeptLeaseOutlivesItsTTLAndLapsesOnceStopped() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 2)
            try await client.put("/kept", [1], lease: lease)
            let keeper = client.keepAlive(lease, ttl: .seconds(2), every: .milliseconds(400))
            try await Task.sleep(for: .seconds(4))  // twice the TTL: only the keeper holds it
            #expect(keeper.isAlive)
            #expect(try await client.get("/kept").kv != nil)
            keeper.stop()
            #expect(!keeper.isAlive)
            await keeper.waitUntilLost()  // returns at once once stopped
            try await eventually(timeout: .seconds(10), "the unkept lease lapsed") { try await client.get("/kept").kv == nil }
        }
    }

    @Test func aRevokedLeaseIsReportedLost() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 30)
            let keeper = client.keepAlive(lease, ttl: .seconds(30), every: .milliseconds(100))
            try await eventually("a first round") { try await client.keepAliveOnce(lease) > 0 && keeper.isAlive }
            try await client.revokeLease(lease)
            try await withTimeout(.seconds(5)) { await keeper.waitUntilLost() }
            #expect(!keeper.isAlive)
        }
    }

    @Test func unreachableEtcdLosesTheLeaseAfterItsTTL() async throws {
        try await withEtcd(callTimeout: .seconds(1)) { etcd, client in
            let lease = try await client.grantLease(ttl: 2)
            let keeper = client.keepAlive(lease, ttl: .seconds(2), every: .milliseconds(300))
            try await eventually("a first round") { keeper.isAlive }
            etcd.pause()
            let start = ContinuousClock.now
            try await withTimeout(.seconds(6)) { await keeper.waitUntilLost() }
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(!keeper.isAlive)
            etcd.resume()
        }
    }

    @Test func theKeeperReconnectsAfterARestart() async throws {
        try await withEtcd { etcd, client in
            let lease = try await client.grantLease(ttl: 4)
            try await client.put("/kept", [1], lease: lease)
            let keeper = client.keepAlive(lease, ttl: .seconds(4), every: .milliseconds(300))
            try await etcd.restart()
            try await Task.sleep(for: .seconds(5))  // past the TTL: only a reconnected keeper holds it
            #expect(keeper.isAlive)
            #expect(try await client.get("/kept").kv != nil)
            keeper.stop()
        }
    }
}

/// Runs `body`, failing if it takes longer than `timeout`.
func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { await body(); return true }
        group.addTask { try await Task.sleep(for: timeout); return false }
        let finished = try await group.next()!
        group.cancelAll()
        if !finished { throw TestTimeout(timeout: timeout) }
    }
}

struct TestTimeout: Error { let timeout: Duration }
