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
            try await putWithFreshLease(client, "/ephemeral", [1], ttl: 2)
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
            let lease = try await client.grantLease(ttl: 3)
            let keeper = client.keepAlive(lease, ttl: .seconds(3), every: .milliseconds(300))
            try await client.put("/kept", [1], lease: lease)
            try await Task.sleep(for: .seconds(6))  // twice the TTL: only the keeper holds it
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

    @Test func waitingForLossEndsWithTheWaitingTask() async throws {
        try await withEtcd { _, client in
            let lease = try await client.grantLease(ttl: 30)
            let keeper = client.keepAlive(lease, ttl: .seconds(30), every: .milliseconds(200))
            let waiter = Task { await keeper.waitUntilLost() }
            try await Task.sleep(for: .milliseconds(50))
            waiter.cancel()
            try await withTimeout(.seconds(2)) { await waiter.value }
            #expect(keeper.isAlive)
            keeper.stop()
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
            #expect(ContinuousClock.now - start < .seconds(4))
            #expect(!keeper.isAlive)
            etcd.resume()
        }
    }

    @Test func theKeeperReconnectsAfterARestart() async throws {
        try await withEtcd { etcd, client in
            let lease = try await client.grantLease(ttl: 6)
            let keeper = client.keepAlive(lease, ttl: .seconds(6), every: .milliseconds(300))
            try await client.put("/kept", [1], lease: lease)
            try await etcd.restart()
            try await Task.sleep(for: .seconds(7))  // past the TTL: only a reconnected keeper holds it
            #expect(keeper.isAlive)
            #expect(try await client.get("/kept").kv != nil)
            keeper.stop()
        }
    }
}

/// Puts `key` attached to a new lease of `ttl` seconds. On a loaded machine a short
/// lease can lapse between the grant and the put (etcd: NOT_FOUND); then again.
@discardableResult
func putWithFreshLease(_ client: EtcdClient, _ key: String, _ value: [UInt8], ttl: Int64) async throws -> Int64 {
    for attempt in 1... {
        let lease = try await client.grantLease(ttl: ttl)
        do {
            try await client.put(key, value, lease: lease)
            return lease
        } catch let error as ShoalError where error.code == .notFound && attempt < 3 {
            continue
        }
    }
    fatalError("unreachable")
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
