import ArgumentParser
import Dispatch
import Foundation
import Logging
import Coordinator
import GRPCBridge
import VectorCore

/// Splits HOST:PORT.
func parseAddress(_ address: String) throws -> (host: String, port: Int) {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
          (0...65535).contains(port), colon != address.startIndex else {
        throw ValidationError("expected HOST:PORT, got '\(address)'")
    }
    return (String(address[..<colon]), port)
}

func makeLogger(label: String, level: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = Logger.Level(rawValue: level) ?? .info
    return logger
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// How long in-flight calls may run after SIGTERM before they are cancelled. With the
/// node's stop (the committer's queue, one chunk of indexing, one graph image save) it
/// keeps a process's exit well inside the 30 s an orchestrator waits before SIGKILL.
let shutdownGrace: Duration = .seconds(5)

/// Returns when the process receives SIGTERM or SIGINT (their default action is suppressed).
func waitForTermination() async -> String {
    await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
        let queue = DispatchQueue(label: "shoal.signals")
        let once = SignalOnce(continuation)
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { once.fire(name) }
            source.resume()
            once.keep(source)
        }
    }
}

/// Resumes the waiting task on the first signal; keeps the signal sources alive.
private final class SignalOnce: @unchecked Sendable {
    // @unchecked: every access happens on the one serial signal queue, or before it starts.
    private var continuation: CheckedContinuation<String, Never>?
    private var sources: [any DispatchSourceSignal] = []
    init(_ continuation: CheckedContinuation<String, Never>) { self.continuation = continuation }
    func keep(_ source: any DispatchSourceSignal) { sources.append(source) }
    func fire(_ name: String) {
        continuation?.resume(returning: name)
        continuation = nil
    }
}

extension NodeDirectory {
    /// gRPC channels to the nodes, carrying messages as large as the server's
    /// (`limits.maxMessageBytes`); keepalive pings notice a node cut off mid-call (a
    /// paused process, a lost link).
    static func channels(limits: RequestLimits) -> NodeDirectory {
        NodeDirectory { try Channel(target: $0, maxMessageBytes: limits.maxMessageBytes, keepalive: .toNodes) }
    }
}
