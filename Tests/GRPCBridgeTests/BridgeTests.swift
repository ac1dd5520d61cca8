import EtcdTestSupport
import GRPCBridge
import Testing
import VectorCore

/// Real server on 127.0.0.1, real client channel, through the C++ bridge.
/// Serialized, and through `BridgeTestGate` with every other test that opens channels:
/// each test ends by checking the bridge's live-object counters return to zero.
@Suite(.serialized)
struct BridgeTests {
    /// Runs `body` against a fresh fixture, shuts it down, and checks nothing is left alive.
    func withFixture(maxMessageBytes: Int = 1 << 20, _ body: (Fixture, EventLog) async throws -> Void) async throws {
        try await BridgeTestGate.run { try await withFixtureUngated(maxMessageBytes: maxMessageBytes, body) }
    }

    private func withFixtureUngated(maxMessageBytes: Int, _ body: (Fixture, EventLog) async throws -> Void) async throws {
        let log = EventLog()
        do {
            let fixture = try Fixture.start(log: log, maxMessageBytes: maxMessageBytes)
            do {
                try await body(fixture, log)
            } catch {
                await fixture.server.shutdown(grace: .seconds(2))
                throw error
            }
            await fixture.server.shutdown(grace: .seconds(2))
        }
        try await eventually("bridge objects released (\(BridgeDiagnostics.live()))") { BridgeDiagnostics.live().isEmpty }
    }

    @Test func unaryRoundTrip() async throws {
        try await withFixture { fixture, _ in
            let reply = try await fixture.channel.unary(method: Fixture.echo, request: [1, 2, 3, 255])
            #expect(reply == [255, 3, 2, 1])
            let empty = try await fixture.channel.unary(method: Fixture.echo, request: [])
            #expect(empty == [])
        }
    }

    @Test func blockingHandlersDecodeOnTheReceivingThreadAndAnswerFromAWorker() async throws {
        try await withFixture { fixture, _ in
            let reply = try await fixture.channel.unary(method: Fixture.blocking, request: [1, 2, 3])
            #expect(reply == [3, 2, 1])
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: Fixture.blocking, request: [])
            }
            #expect(error == ShoalError(.invalidArgument, "empty request"))
        }
    }

    @Test func startingHandlersAnswerFromWhicheverThreadCompletes() async throws {
        try await withFixture { fixture, _ in
            let now = try await fixture.channel.unary(method: Fixture.starting, request: Array("now".utf8))
            #expect(now == Array("answered now".utf8))
            let later = try await fixture.channel.unary(method: Fixture.starting, request: Array("later".utf8))
            #expect(later == Array("answered later".utf8))
        }
    }

    @Test func cancellingAStartingCallStopsItsWork() async throws {
        try await withFixture { fixture, log in
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: Fixture.starting, request: Array("s1".utf8), timeout: .milliseconds(150))
            }
            #expect(error?.code == .deadlineExceeded)
            try await eventually("the started work was cancelled") { await log.contains("cancelled s1") }
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        try await withFixture { fixture, _ in
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: "/shoal.test.Bridge/Nope", request: [1])
            }
            #expect(error?.code == .unimplemented)
            #expect(error?.message.contains("/shoal.test.Bridge/Nope") == true)
        }
    }

    @Test func handlerErrorsCarryTheirStatus() async throws {
        try await withFixture { fixture, _ in
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: Fixture.fails, request: [9, 9])
            }
            #expect(error == ShoalError(.invalidArgument, "bad input: 2 bytes"))
        }
    }

    @Test func metadataReachesTheHandler() async throws {
        try await withFixture { fixture, _ in
            let reply = try await fixture.channel.unary(
                method: Fixture.metadata, request: [], timeout: .seconds(5),
                metadata: [("X-Shoal-Token", "abc"), ("tenant", "t1")])
            let text = String(decoding: reply, as: UTF8.self)
            #expect(text.contains("tenant=t1"))
            #expect(text.contains("x-shoal-token=abc"))
        }
    }

    @Test func slowHandlerGivesDeadlineExceededAndIsCancelled() async throws {
        try await withFixture { fixture, log in
            let start = ContinuousClock.now
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: Fixture.slow, request: Array("d1".utf8), timeout: .milliseconds(150))
            }
            #expect(error?.code == .deadlineExceeded)
            #expect(ContinuousClock.now - start < .seconds(10))
            try await eventually("handler saw the deadline") { await log.contains("cancelled d1") }
        }
    }

    @Test func cancellingTheClientTaskReachesTheHandler() async throws {
        try await withFixture { fixture, log in
            let channel = fixture.channel
            let call = Task {
                try await channel.unary(method: Fixture.slow, request: Array("c1".utf8), timeout: .seconds(60))
            }
            try await eventually("handler started") { await log.contains("started c1") }
            call.cancel()
            let result = await call.result
            let error = #expect(throws: ShoalError.self) { try result.get() }
            #expect(error?.code == .cancelled)
            try await eventually("handler saw the cancellation") { await log.contains("cancelled c1") }
        }
    }

    @Test func cancelledBeforeStartNeverReachesTheServer() async throws {
        try await withFixture { fixture, log in
            let channel = fixture.channel
            let call = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await channel.unary(method: Fixture.slow, request: Array("c0".utf8))
            }
            let result = await call.result
            #expect(throws: ShoalError.self) { try result.get() }
            #expect(await !log.contains("started c0"))
        }
    }

    @Test func thousandConcurrentCallsOnOneChannel() async throws {
        try await withFixture { fixture, _ in
            let channel = fixture.channel
            let replies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        let request = Array("request-\(i)".utf8)
                        return (i, try await channel.unary(method: Fixture.echo, request: request, timeout: .seconds(30)))
                    }
                }
                var all: [Int: [UInt8]] = [:]
                for try await (i, reply) in group { all[i] = reply }
                return all
            }
            #expect(replies.count == 1000)
            for (i, reply) in replies {
                #expect(reply == Array("request-\(i)".utf8.reversed()))
            }
        }
    }

    @Test func oversizedRequestIsResourceExhausted() async throws {
        try await withFixture(maxMessageBytes: 1024) { fixture, _ in
            let error = await #expect(throws: ShoalError.self) {
                _ = try await fixture.channel.unary(method: Fixture.echo, request: [UInt8](repeating: 7, count: 4096))
            }
            #expect(error?.code == .resourceExhausted)
        }
    }

    @Test func shutdownDrainsInFlightCalls() async throws {
        try await withFixture { fixture, log in
            let channel = fixture.channel
            // "q…" requests finish in 200 ms; shutdown must wait for them.
            let call = Task { try await channel.unary(method: Fixture.slow, request: Array("q1".utf8), timeout: .seconds(30)) }
            try await eventually("handler started") { await log.contains("started q1") }
            await fixture.server.shutdown(grace: .seconds(10))
            #expect(try await call.value == Array("done q1".utf8))
            // After shutdown, new calls fail fast.
            let error = await #expect(throws: ShoalError.self) {
                _ = try await channel.unary(method: Fixture.echo, request: [1], timeout: .seconds(5))
            }
            #expect(error?.code == .unavailable)
        }
    }

    @Test func shutdownCancelsCallsPastTheGracePeriod() async throws {
        try await withFixture { fixture, log in
            let channel = fixture.channel
            let call = Task { try await channel.unary(method: Fixture.slow, request: Array("g1".utf8), timeout: .seconds(60)) }
            try await eventually("handler started") { await log.contains("started g1") }
            await fixture.server.shutdown(grace: .milliseconds(100))
            let outcome = await call.result
            #expect(throws: ShoalError.self) { try outcome.get() }
            #expect(await log.contains("cancelled g1"))
        }
    }

    @Test func illegalMetadataIsRefusedNotFatal() async throws {
        try await withFixture { fixture, _ in
            for bad in [("tenant", "café"), ("has space", "x"), ("", "x"), ("grpc-timeout", "1S"), ("k", "line\nbreak")] {
                let error = await #expect(throws: ShoalError.self) {
                    _ = try await fixture.channel.unary(method: Fixture.echo, request: [1], timeout: .seconds(5), metadata: [bad])
                }
                #expect(error?.code == .invalidArgument, "metadata \(bad)")
            }
            // The channel still works afterwards.
            let reply = try await fixture.channel.unary(method: Fixture.echo, request: [1, 2])
            #expect(reply == [2, 1])
        }
    }

    @Test func hugeTimeoutsMeanNoDeadline() async throws {
        try await withFixture { fixture, _ in
            let reply = try await fixture.channel.unary(method: Fixture.echo, request: [7, 8], timeout: .seconds(Int64.max / 2))
            #expect(reply == [8, 7])
        }
    }

    @Test func unreachablePeerIsUnavailable() async throws {
        try await BridgeTestGate.run {
            // Bind a server, learn its port, shut it down: nothing listens there any more.
            let log = EventLog()
            let fixture = try Fixture.start(log: log)
            await fixture.server.shutdown()
            let channel = try Channel(target: "127.0.0.1:\(fixture.port)")
            let error = await #expect(throws: ShoalError.self) {
                _ = try await channel.unary(method: Fixture.echo, request: [1], timeout: .seconds(5))
            }
            #expect(error?.code == .unavailable)
        }
    }
}
