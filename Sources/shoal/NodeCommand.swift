import ArgumentParser
import Foundation
import GRPCBridge
import Logging
import ShardNode
import VectorCore

/// `shoal node`: one shard node, serving the internal Shard service until SIGTERM/SIGINT.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a shard node.",
        discussion: """
            Example:
              shoal node --listen 127.0.0.1:7101 --data ./run/node1
            """)

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).") var listen = "127.0.0.1:7101"
    @Option(help: "The node's data folder.") var data = "./shoal-data/node"
    @Option(help: "A name for logs and Health (default: the listen address).") var name: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Flag(help: "Acknowledge writes before the WAL is fsynced (faster; a machine crash can lose the last writes).") var noSync = false
    @Option(help: "Refresh a replica's graph image after this many changed points.") var imageEveryPoints = 50_000
    @OptionGroup(title: "Storage") var storeOptions: StoreOptions
    @Flag(help: .hidden) var pauseIndexing = false
    @Flag(help: .hidden) var ignoreImages = false
    @Option(help: "Write the bound port to this file once serving (for scripts and tests using port 0).") var portFile: String?
    @OptionGroup(title: "Limits") var limitOptions: LimitOptions

    func run() async throws {
        let (host, port) = try parseAddress(listen)
        let logger = makeLogger(label: "shoal.node", level: logLevel)
        var options = ShardStore.Options()
        options.sync = !noSync
        options.imageEveryPoints = imageEveryPoints
        options.indexingPaused = pauseIndexing
        options.ignoreImages = ignoreImages
        storeOptions.apply(to: &options)
        options.limits = limitOptions.limits
        let service = try NodeService(name: name ?? listen, dataDirectory: URL(fileURLWithPath: data), options: options, logger: logger)
        let server = try Server(maxMessageBytes: options.limits.maxMessageBytes, maxConcurrentCalls: options.limits.maxConcurrentCalls,
                                workers: WorkerPool(name: "node-read", limits: options.limits))
        try service.register(on: server)
        let bound = try server.start(host: host, port: port)
        if let portFile { try Data("\(bound)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic) }
        logger.info("node serving", metadata: ["address": "\(host):\(bound)", "node_id": "\(service.nodeID)", "data": "\(data)"])
        let signal = await waitForTermination()
        logger.info("node shutting down", metadata: ["signal": "\(signal)"])
        await server.shutdown(grace: shutdownGrace)
        service.close()
        logger.info("node stopped")
    }
}
