import EtcdProto
import EtcdTestSupport
import Foundation
import GRPCBridge
import Testing
import VectorCore

/// Client bidi streams through the bridge. Our `Server` is unary-only, so these talk
/// to a real etcd (its LeaseKeepAlive and Watch are bidi streams). In `BridgeTests`,
/// whose tests run one at a time (live counters).
extension BridgeTests {
    static let keepAlive = "/etcdserverpb.Lease/LeaseKeepAlive"
    static let watch = "/etcdserverpb.Watch/Watch"

    /// A fresh etcd and a channel to it; afterwards, checks every bridge object is released.
    func withEtcdChannel(_ body: (EtcdTestServer, Channel) async throws -> Void) async throws {
        try await BridgeTestGate.run {
            let etcd = try await EtcdTestServer()
            defer { etcd.stop() }
            try await body(etcd, try Channel(target: etcd.endpoint))
            try await eventually("bridge objects released (\(BridgeDiagnostics.live()))") { BridgeDiagnostics.live().isEmpty }
        }
    }

    func grantLease(_ channel: Channel, ttl: Int64) async throws -> Int64 {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttl
        let reply = try await channel.unary(method: "/etcdserverpb.Lease/LeaseGrant", request: try request.serializedBytes(), timeout: .seconds(5))
        return try Etcdserverpb_LeaseGrantResponse(serializedBytes: reply).id
    }

    func keepAliveRequest(_ id: Int64) throws -> [UInt8] {
        var request = Etcdserverpb_LeaseKeepAliveRequest()
        request.id = id
        return try request.serializedBytes()
    }

    @Test func streamToAUnaryMethodOfOurServer() async throws {
        try await withFixture { fixture, log in
            // Our server reads one request and answers once: a stream of one message each way.
            let stream = try fixture.channel.openStream(method: Fixture.echo)
            try await stream.send([1, 2, 3])
            #expect(try await stream.receive() == [3, 2, 1])
            #expect(try await stream.receive() == nil)
            // Dropping a stream whose handler still runs cancels the handler.
            do {
                let slow = try fixture.channel.openStream(method: Fixture.slow)
                try await slow.send(Array("s1".utf8))
                try await eventually("handler started") { await log.contains("started s1") }
            }
            try await eventually("handler saw the cancellation") { await log.contains("cancelled s1") }
        }
    }

    @Test func streamRoundTripsThenEndsCleanly() async throws {
        try await withEtcdChannel { _, channel in
            let lease = try await grantLease(channel, ttl: 30)
            let stream = try channel.openStream(method: Self.keepAlive)
            for _ in 0..<3 {
                try await stream.send(try keepAliveRequest(lease))
                let reply = try Etcdserverpb_LeaseKeepAliveResponse(serializedBytes: try #require(try await stream.receive()))
                #expect(reply.id == lease)
                #expect(reply.ttl > 25)
            }
            // Several writes queued at once arrive, and are answered, in order.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 { group.addTask { try await stream.send(try keepAliveRequest(lease)) } }
                try await group.waitForAll()
            }
            for _ in 0..<20 { #expect(try await stream.receive() != nil) }
            stream.closeSend()
            #expect(try await stream.receive() == nil)
            #expect(try await stream.receive() == nil)
            let late = await #expect(throws: ShoalError.self) { try await stream.send([]) }
            #expect(late?.code == .failedPrecondition)
        }
    }

    @Test func watchStreamDeliversManyMessagesInOrder() async throws {
        try await withEtcdChannel { _, channel in
            var create = Etcdserverpb_WatchRequest()
            create.createRequest.key = Data("/w/".utf8)
            create.createRequest.rangeEnd = Data("/w0".utf8)
            let stream = try channel.openStream(method: Self.watch)
            try await stream.send(try create.serializedBytes())
            let created = try Etcdserverpb_WatchResponse(serializedBytes: try #require(try await stream.receive()))
            #expect(created.created)
            for i in 0..<50 {
                var put = Etcdserverpb_PutRequest()
                put.key = Data("/w/\(i)".utf8)
                put.value = Data([UInt8(i)])
                _ = try await channel.unary(method: "/etcdserverpb.KV/Put", request: try put.serializedBytes(), timeout: .seconds(5))
            }
            var seen: [UInt8] = []
            while seen.count < 50 {
                let reply = try Etcdserverpb_WatchResponse(serializedBytes: try #require(try await stream.receive()))
                seen += reply.events.map { $0.kv.value.first ?? 255 }
            }
            #expect(seen == (0..<50).map { UInt8($0) })
        }
    }

    @Test func cancellingAWaitingReceiveCancelsTheStream() async throws {
        try await withEtcdChannel { _, channel in
            let stream = try channel.openStream(method: Self.keepAlive)
            let waiting = Task { try await stream.receive() }
            try await Task.sleep(for: .milliseconds(50))
            waiting.cancel()
            let error = await #expect(throws: ShoalError.self) { _ = try await waiting.value }
            #expect(error?.code == .cancelled)
            let after = await #expect(throws: ShoalError.self) { try await stream.send(try keepAliveRequest(1)) }
            #expect(after?.code == .cancelled)
        }
    }

    @Test func droppingARunningStreamReleasesIt() async throws {
        try await withEtcdChannel { _, channel in
            let lease = try await grantLease(channel, ttl: 30)
            for _ in 0..<20 {
                let stream = try channel.openStream(method: Self.keepAlive)
                try await stream.send(try keepAliveRequest(lease))
                _ = try await stream.receive()
                try await stream.send(try keepAliveRequest(lease))  // its reply is left unread
            }
        }
        // And the channel itself dropped while a stream runs: freed off gRPC's threads.
        try await withEtcdChannel { _, channel in
            let stream = try channel.openStream(method: Self.keepAlive)
            try await stream.send(try keepAliveRequest(1))
            _ = consume channel
            _ = try await stream.receive()
        }
    }

    @Test func streamFailuresCarryTheirStatus() async throws {
        try await withEtcdChannel { etcd, channel in
            let unknown = try channel.openStream(method: "/etcdserverpb.Lease/Nope")
            let error = await #expect(throws: ShoalError.self) { _ = try await unknown.receive() }
            #expect(error?.code == .unimplemented)

            let timed = try channel.openStream(method: Self.keepAlive, timeout: .milliseconds(100))
            let late = await #expect(throws: ShoalError.self) { _ = try await timed.receive() }
            // gRPC's own deadline, or etcd's answer to the call it saw expire (UNKNOWN): a race
            // between the two ends, either carried as the status that arrived.
            #expect(late?.code == .deadlineExceeded || late?.code == .unknown, "\(String(describing: late))")

            let bad = #expect(throws: ShoalError.self) {
                _ = try channel.openStream(method: Self.keepAlive, metadata: [("bad key", "v")])
            }
            #expect(bad?.code == .invalidArgument)

            let dead = try Channel(target: "127.0.0.1:\(try freeLoopbackPort())")
            let nowhere = try dead.openStream(method: Self.keepAlive)
            let unavailable = await #expect(throws: ShoalError.self) { _ = try await nowhere.receive() }
            #expect(unavailable?.code == .unavailable)

            // etcd going away ends a running stream with UNAVAILABLE.
            let running = try channel.openStream(method: Self.keepAlive)
            try await running.send(try keepAliveRequest(1))
            _ = try await running.receive()
            etcd.stop()
            let gone = await #expect(throws: ShoalError.self) { _ = try await running.receive() }
            #expect(gone?.code == .unavailable)
        }
    }
}
