import ArgumentParser
import GRPCBridge
import VectorCore

/// Drives many calls through the bridge (successful, failed, deadline-exceeded and
/// cancelled ones), shuts everything down, and exits non-zero if any bridge object
/// is still alive. `scripts/leakcheck-bridge.sh` runs it under valgrind.
struct BridgeLeakCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-leakcheck",
        abstract: "Many bridge calls of every outcome, then a live-object check.")

    @Option(help: "How many calls in all.") var calls = 10_000
    @Option(help: "Calls in flight at once.") var concurrency = 32
    @Flag(help: "Leak one channel on purpose: shows that the leak checker catches a leak.") var leakOne = false

    func run() async throws {
        let echo = "/shoal.test.Leak/Echo", fails = "/shoal.test.Leak/Fails", slow = "/shoal.test.Leak/Slow"
        var outcomes = [String: Int]()
        do {
            let server = try Server()
            try server.register(echo) { Array($0.bytes.reversed()) }
            try server.register(fails) { _ in throw ShoalError(.invalidArgument, "always fails") }
            try server.register(slow) { _ in
                try await Task.sleep(for: .seconds(30))
                return []
            }
            let port = try server.start()
            let channel = try Channel(target: "127.0.0.1:\(port)")
            outcomes = try await drive(channel, echo: echo, fails: fails, slow: slow)
            await server.shutdown(grace: .seconds(5))
        }
        if leakOne {
            _ = Unmanaged.passRetained(try Channel(target: "127.0.0.1:1"))
            print("leaked one channel on purpose")
            return
        }
        // Completion and release callbacks run on gRPC's threads just after the calls return.
        let deadline = ContinuousClock.now + .seconds(30)
        while !BridgeDiagnostics.live().isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let live = BridgeDiagnostics.live()
        print("outcomes: \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        print("live after shutdown: \(live)")
        if !live.isEmpty { throw ExitCode(1) }
    }

    /// Call i: every 10th is cancelled by its task, every 10th+1 hits a 20 ms deadline,
    /// every 10th+2 fails in the handler, every 10th+3 is a bidi stream (one message each
    /// way: the server's methods are unary), every 10th+4 a stream dropped while its
    /// handler runs, the rest echo.
    private func drive(_ channel: Channel, echo: String, fails: String, slow: String) async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: String.self) { group in
            var outcomes = [String: Int]()
            var next = 0
            func add() {
                let i = next
                next += 1
                group.addTask {
                    switch i % 10 {
                    case 0:
                        let call = Task { try await channel.unary(method: slow, request: [1], timeout: .seconds(30)) }
                        try await Task.sleep(for: .milliseconds(2))
                        call.cancel()
                        return Self.outcome(await call.result)
                    case 1:
                        return Self.outcome(await Result(catching: { try await channel.unary(method: slow, request: [2], timeout: .milliseconds(20)) }))
                    case 2:
                        return Self.outcome(await Result(catching: { try await channel.unary(method: fails, request: [3]) }))
                    case 3:
                        let stream = try channel.openStream(method: echo, timeout: .seconds(30))
                        try await stream.send([1, 2])
                        guard try await stream.receive() == [2, 1], try await stream.receive() == nil else {
                            throw ShoalError(.dataLoss, "stream \(i): wrong reply")
                        }
                        return "stream-ok"
                    case 4:
                        let stream = try channel.openStream(method: slow)
                        try await stream.send([4])
                        return "stream-dropped"
                    default:
                        let request = Array("call \(i)".utf8)
                        let reply = try await channel.unary(method: echo, request: request, timeout: .seconds(30))
                        guard reply == request.reversed() else { throw ShoalError(.dataLoss, "call \(i): wrong reply") }
                        return "ok"
                    }
                }
            }
            for _ in 0..<min(concurrency, calls) { add() }
            while let outcome = try await group.next() {
                outcomes[outcome, default: 0] += 1
                if next < calls { add() }
            }
            return outcomes
        }
    }

    private static func outcome(_ result: Result<[UInt8], any Error>) -> String {
        switch result {
        case .success: "ok"
        case .failure(let error as ShoalError): "\(error.code)"
        case .failure(let error): "\(error)"
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
