import ArgumentParser
import Coordinator
import Foundation
import GRPCBridge
import Logging
import ShardNode
import ShoalRPC
import VectorCore

/// `shoal serve`: the embedded default, a coordinator and one node in one process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run Shoal in one process: coordinator and one shard node (data in ./shoal-data).",
        discussion: """
            Example:
              shoal serve                      # 127.0.0.1:7100, data in ./shoal-data
              shoal serve --listen 0.0.0.0:7100 --data /var/lib/shoal
            """)

    @Option(help: "Address to listen on, HOST:PORT.") var listen = "127.0.0.1:7100"
    @Option(help: "Data folder.") var data = "./shoal-data"
    @Option(help: "Log level.") var logLevel = "info"
    @Option(help: "Write the bound port to this file once serving.") var portFile: String?
    @OptionGroup(title: "Storage") var storeOptions: StoreOptions
    @OptionGroup(title: "Limits") var limitOptions: LimitOptions

    func run() async throws {
        let (host, port) = try parseAddress(listen)
        let logger = makeLogger(label: "shoal", level: logLevel)
        let root = URL(fileURLWithPath: data)
        let limits = limitOptions.limits
        var options = ShardStore.Options()
        options.limits = limits
        storeOptions.apply(to: &options)
        let node = try NodeService(name: "embedded", dataDirectory: root.appendingPathComponent("node"), options: options, logger: logger)
        let nodes = NodeDirectory.channels(limits: limits)
        // Health tells the truth about the one process: its node's storage too.
        let runtime = try CoordinatorRuntime(
            dataDirectory: root.appendingPathComponent("coordinator").path, name: listen, logger: logger, nodes: nodes, limits: limits,
            notServingReason: { [store = node.store] in store.notServingReason })
        // One pool runs the node's reads, whether they come over gRPC or in process.
        let workers = WorkerPool(name: "node-read", limits: limits)
        let server = try Server(maxMessageBytes: limits.maxMessageBytes, maxConcurrentCalls: limits.maxConcurrentCalls, workers: workers)
        let local = LocalTransport(workers: workers)
        try node.register(on: server)
        try node.register(on: local)
        try runtime.register(on: server)
        let bound = try server.start(host: host, port: port)
        // The coordinator reaches its own node in process, by the address it registers it under.
        let self_ = host == "0.0.0.0" || host == "::" ? "127.0.0.1:\(bound)" : "\(host):\(bound)"
        nodes.use(local, for: self_)
        await runtime.join([self_], timeout: .seconds(10), logger: logger)
        if let portFile { try Data("\(bound)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic) }
        logger.info("shoal serving", metadata: ["address": "\(host):\(bound)", "data": "\(data)"])
        let signal = await waitForTermination()
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        runtime.stop()
        await server.shutdown(grace: shutdownGrace)
        workers.stop()
        node.close()
        logger.info("stopped")
    }
}
