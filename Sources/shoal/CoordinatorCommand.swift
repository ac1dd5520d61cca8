import ArgumentParser
import Coordinator
import Foundation
import GRPCBridge
import Logging

/// `shoal coordinator`: routes the public API over the nodes.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: the public VectorStore and Admin services over the nodes.",
        discussion: """
            Example:
              shoal coordinator --listen 127.0.0.1:7100 --nodes 127.0.0.1:7101,127.0.0.1:7102 --data ./run/coordinator
              shoal coordinator --nodes 127.0.0.1:7101 --move-rate-limit 20000
            """)

    @Option(help: "Address to listen on, HOST:PORT.") var listen = "127.0.0.1:7100"
    @Option(help: "Comma-separated HOST:PORT of the shard nodes.") var nodes = ""
    @Option(help: "Folder for the cluster state.") var data = "./shoal-data/coordinator"
    @Option(help: "Log level.") var logLevel = "info"
    @Option(help: "Write the bound port to this file once serving.") var portFile: String?
    @Option(help: "Points per second each shard move copies; 0: no limit.") var moveRateLimit = 0
    @Option(help: "Seconds a shard move retries a failing node before it rolls back.") var moveRetrySeconds = 60
    @Option(help: "Seconds a shard move waits for the target's graph to catch up before switching reads anyway.")
    var moveIndexWaitSeconds = 300
    @Option(help: "Seconds between looks for replicas nothing needs (left by moves on nodes that were down).")
    var orphanSweepSeconds = 10
    @OptionGroup(title: "Limits") var limitOptions: LimitOptions

    func run() async throws {
        let (host, port) = try parseAddress(listen)
        let logger = makeLogger(label: "shoal.coordinator", level: logLevel)
        let moves = MoveOptions(rateLimit: moveRateLimit, retryFor: .seconds(moveRetrySeconds), indexWait: .seconds(moveIndexWaitSeconds))
        let limits = limitOptions.limits
        let runtime = try CoordinatorRuntime(
            dataDirectory: data, name: listen, logger: logger, moves: moves, sweepInterval: .seconds(max(1, orphanSweepSeconds)),
            limits: limits)
        let addresses = nodes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        await runtime.join(addresses, timeout: .seconds(30), logger: logger)
        let server = try Server(maxMessageBytes: limits.maxMessageBytes, maxConcurrentCalls: limits.maxConcurrentCalls)
        try runtime.register(on: server)
        let bound = try server.start(host: host, port: port)
        if let portFile { try Data("\(bound)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic) }
        logger.info("coordinator serving", metadata: ["address": "\(host):\(bound)", "nodes": "\(runtime.cluster.snapshot.nodes.count)"])
        let signal = await waitForTermination()
        logger.info("coordinator shutting down", metadata: ["signal": "\(signal)"])
        await server.shutdown(grace: shutdownGrace)
        logger.info("coordinator stopped")
    }
}
