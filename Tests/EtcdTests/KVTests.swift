import Etcd
import Testing
import VectorCore

/// Keys, prefixes and transactions against a real etcd.
@Suite struct KVTests {
    @Test func putGetDelete() async throws {
        try await withEtcd { _, client in
            let (missing, start) = try await client.get("/a")
            #expect(missing == nil)
            let revision = try await client.put("/a", "one".bytes)
            #expect(revision > start)
            let (kv, now) = try await client.get("/a")
            #expect(now == revision)
            #expect(kv == EtcdKeyValue(key: "/a", value: "one".bytes, createRevision: revision,
                                       modRevision: revision, version: 1, lease: 0))
            let second = try await client.put("/a", [0, 255])
            let updated = try #require(try await client.get("/a").kv)
            #expect(updated.value == [0, 255])
            #expect(updated.createRevision == revision)
            #expect(updated.modRevision == second)
            #expect(updated.version == 2)
            let deleted = try await client.delete("/a")
            #expect(deleted > second)
            #expect(try await client.get("/a").kv == nil)
        }
    }

    @Test func prefixesSelectExactlyTheirKeys() async throws {
        try await withEtcd { _, client in
            for key in ["/p/", "/p/a", "/p/b/c", "/q", "/p", "/o/zz", "/p\u{7f}x"] {
                try await client.put(key, key.bytes)
            }
            let (kvs, _) = try await client.getPrefix("/p/")
            #expect(kvs.map(\.key) == ["/p/", "/p/a", "/p/b/c"])
            #expect(try await client.getPrefix("/p").kvs.map(\.key) == ["/p", "/p/", "/p/a", "/p/b/c", "/p\u{7f}x"])
            #expect(try await client.getPrefix("").kvs.count == 7)
            try await client.deletePrefix("/p/")
            #expect(try await client.getPrefix("/").kvs.map(\.key) == ["/o/zz", "/p", "/p\u{7f}x", "/q"])
        }
    }

    @Test func txnCompareAndSwapOnModRevision() async throws {
        try await withEtcd { _, client in
            let first = try await client.put("/leader", "a".bytes)
            let won = try await client.txn(
                if: [.modRevision("/leader", equals: first)],
                then: [.put("/leader", "b".bytes), .get("/leader")],
                else: [.get("/leader")])
            #expect(won.succeeded)
            #expect(won.ranges.count == 1)
            #expect(won.ranges[0].map(\.value) == ["b".bytes])
            #expect(won.ranges[0][0].modRevision == won.revision)
            // The same swap again: its revision is stale now, so the else branch runs.
            let lost = try await client.txn(
                if: [.modRevision("/leader", equals: first)],
                then: [.put("/leader", "c".bytes)],
                else: [.get("/leader"), .getPrefix("/")])
            #expect(!lost.succeeded)
            #expect(lost.ranges.map { $0.map(\.value) } == [["b".bytes], ["b".bytes]])
            #expect(try await client.get("/leader").kv?.value == "b".bytes)
        }
    }

    @Test func txnCreateIfAbsent() async throws {
        try await withEtcd { _, client in
            let create: (String) async throws -> EtcdTxnResult = { value in
                try await client.txn(if: [.createRevision("/once", equals: 0)], then: [.put("/once", value.bytes)])
            }
            #expect(try await create("first").succeeded)
            let second = try await create("second")
            #expect(!second.succeeded)
            #expect(second.ranges.isEmpty)
            #expect(try await client.get("/once").kv?.value == "first".bytes)
        }
    }

    @Test func txnOnValueAndVersion() async throws {
        try await withEtcd { _, client in
            try await client.put("/v", "x".bytes)
            let both = try await client.txn(
                if: [.value("/v", equals: "x".bytes), .version("/v", equals: 1)],
                then: [.delete("/v"), .put("/w", [1]), .deletePrefix("/none/")])
            #expect(both.succeeded)
            #expect(try await client.get("/v").kv == nil)
            let wrong = try await client.txn(if: [.value("/w", equals: [2])], then: [.delete("/w")])
            #expect(!wrong.succeeded)
            #expect(try await client.get("/w").kv?.value == [1])
        }
    }

    @Test func etcdRefusalsKeepTheirStatus() async throws {
        try await withEtcd { _, client in
            // etcd refuses a txn that writes one key twice.
            let error = await #expect(throws: ShoalError.self) {
                _ = try await client.txn(if: [], then: [.put("/d", [1]), .put("/d", [2])])
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("/etcdserverpb.KV/Txn") == true)
        }
    }
}
