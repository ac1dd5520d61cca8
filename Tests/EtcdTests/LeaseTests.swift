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
