import GRPCBridge
import Synchronization
import Testing
import VectorCore

/// `FailoverTransport`: real servers, one stopped, and in-process transports that
/// fail on demand. In `BridgeTests`, whose tests run one at a time (live counters).
extension BridgeTests {
    @Test func failoverSkipsAStoppedServerAndSticks() async throws {
        try await withFixture { live, _ in
            let stopped = try Fixture.start(log: EventLog())
            await stopped.server.shutdown(grace: .seconds(2))
            let targets = ["127.0.0.1:\(stopped.port)", "127.0.0.1:\(live.port)"]
            let transport = try FailoverTransport(targets: targets)
            #expect(try await transport.unary(method: Fixture.echo, request: [1, 2], timeout: .seconds(10)) == [2, 1])
            #expect(transport.currentTarget == targets[1])
            #expect(try await transport.unary(method: Fixture.echo, request: [3], timeout: .seconds(10)) == [3])

            let error = await #expect(throws: ShoalError.self) {  // not UNAVAILABLE: thrown at once
                _ = try await transport.unary(method: Fixture.fails, request: [9], timeout: .seconds(10))
            }
            #expect(error == ShoalError(.invalidArgument, "bad input: 1 bytes"))
        }
    }

    @Test func failoverNamesEveryTargetWhenNoneAnswers() async throws {
        try await withFixture { _, _ in
            var targets: [String] = []
            for _ in 0..<2 {
                let stopped = try Fixture.start(log: EventLog())
                await stopped.server.shutdown(grace: .seconds(2))
                targets.append("127.0.0.1:\(stopped.port)")
            }
            let transport = try FailoverTransport(targets: targets)
            let start = ContinuousClock.now
            let error = await #expect(throws: ShoalError.self) {
                _ = try await transport.unary(method: Fixture.echo, request: [1], timeout: .milliseconds(500))
            }
            #expect(ContinuousClock.now - start < .milliseconds(1500))
            #expect(error?.code == .unavailable)
            #expect(targets.allSatisfy { error?.message.contains("\($0):") == true }, "\(error?.message ?? "")")
        }
    }

    @Test func failoverCyclesInOrderWithinTheTimeout() async throws {
        let fakes = (0..<3).map { _ in FailingTransport() }
        let transport = FailoverTransport(targets: ["a:1", "b:2", "c:3"], transports: fakes, initialBackoff: .milliseconds(5))
        fakes[0].failures.store(1, ordering: .relaxed)
        fakes[1].failures.store(100, ordering: .relaxed)
        #expect(try await transport.unary(method: "/m", request: [7], timeout: .seconds(5)) == [7])
        #expect(fakes.map { $0.calls.load(ordering: .relaxed) } == [1, 1, 1])
        #expect(transport.currentTarget == "c:3")

        fakes[2].failures.store(100, ordering: .relaxed)  // c, then a (recovered) answers
        #expect(try await transport.unary(method: "/m", request: [8], timeout: .seconds(5)) == [8])
        #expect(fakes.map { $0.calls.load(ordering: .relaxed) } == [2, 1, 2])
        #expect(transport.currentTarget == "a:1")

        fakes[0].failures.store(100, ordering: .relaxed)
        let start = ContinuousClock.now
        await #expect(throws: ShoalError.self) {
            _ = try await transport.unary(method: "/m", request: [9], timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - start < .milliseconds(800))
        #expect(fakes.allSatisfy { $0.calls.load(ordering: .relaxed) > 4 })  // several rounds
        let rounds = fakes.map { $0.calls.load(ordering: .relaxed) }

        let one = FailoverTransport(targets: ["a:1"], transports: [fakes[0]])  // one target: no retry
        await #expect(throws: ShoalError.self) { _ = try await one.unary(method: "/m", request: [1], timeout: .seconds(5)) }
        #expect(fakes[0].calls.load(ordering: .relaxed) == rounds[0] + 1)
    }

    @Test func cancellingAFailoverCallEndsItWithCancelled() async throws {
        let fakes = [FailingTransport(), FailingTransport()]
        for fake in fakes { fake.failures.store(.max, ordering: .relaxed) }
        let transport = FailoverTransport(targets: ["a:1", "b:2"], transports: fakes, initialBackoff: .seconds(1))
        let call = Task { try await transport.unary(method: "/m", request: [1], timeout: .seconds(60)) }
        try await eventually("a round failed") { fakes[1].calls.load(ordering: .relaxed) > 0 }
        let start = ContinuousClock.now
        call.cancel()
        let error = await #expect(throws: ShoalError.self) { _ = try await call.value }
        #expect(error?.code == .cancelled)
        #expect(ContinuousClock.now - start < .milliseconds(500))
    }
}

/// Answers with the request, after failing `failures` calls with UNAVAILABLE.
private final class FailingTransport: UnaryTransport {
    let failures = Atomic<Int>(0)
    let calls = Atomic<Int>(0)

    func unary(method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)]) async throws -> [UInt8] {
        calls.add(1, ordering: .relaxed)
        if failures.load(ordering: .relaxed) > 0 {
            failures.subtract(1, ordering: .relaxed)
            throw ShoalError(.unavailable, "fake: down")
        }
        return request
    }
}
