import ArgumentParser
import Foundation
import GRPCBridge
import ShoalProto
import ShoalRPC
import VectorCore

/// `shoal health`: asks a node (or, with --admin, a coordinator) whether it serves.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check that a Shoal node or coordinator is serving (exit 0) or not (exit 1).",
        discussion: """
            Examples:
              shoal health --target 127.0.0.1:7101
              shoal health --target 127.0.0.1:7101 --json
            """)

    @Option(help: "HOST:PORT of the process.") var target = "127.0.0.1:7101"
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 3
    @Flag(help: "Print the reply as JSON.") var json = false

    func run() async throws {
        let channel = try Channel(target: target)
        let reply: Shoal_V1_HealthResponse
        do {
            let limit = Duration.milliseconds(Int(timeout * 1000))
            do {
                reply = try await channel.call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: limit)
            } catch let error as ShoalError where error.code == .unimplemented {
                reply = try await channel.call(AdminRPC.health, Shoal_V1_HealthRequest(), timeout: limit)  // a coordinator
            }
        } catch let error as ShoalError {
            printError("\(target): \(error)")
            throw ExitCode(1)
        }
        if json {
            print(try reply.jsonString())
        } else {
            let status = reply.status == .serving ? "SERVING" : "NOT_SERVING" + (reply.reason.isEmpty ? "" : " (\(reply.reason))")
            print("\(target)  \(reply.nodeName)  \(status)  id=\(reply.nodeID)  up=\(reply.uptimeMs / 1000)s  v\(reply.version)")
        }
        if reply.status != .serving { throw ExitCode(1) }
    }
}
