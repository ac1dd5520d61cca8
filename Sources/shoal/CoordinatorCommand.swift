import ArgumentParser
import Coordinator
import Etcd
import Foundation
import GRPCBridge
import Logging

/// `shoal coordinator`: routes the public API over the nodes.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: the public VectorStore and Admin services over the nodes.",
        discussion: """
            With --etcd the cluster metadata (collections, placements, nodes, moves) lives
            in etcd and any number of coordinators serve the same cluster: each routes
            from its watched copy, and the one elected through an etcd lease (within
            --lease-ttl-seconds after the leader dies) runs moves, rebalancing and the
            janitor. Without --etcd the state is a local file in --data (one coordinator).

            Examples:
              shoal coordinator --listen 127.0.0.1:7100 --nodes 127.0.0.1:7101,127.0.0.1:7102 --data ./run/coordinator
              shoal coordinator --listen 127.0.0.1:7142 --nodes 127.0.0.1:7101 --etcd 127.0.0.1:7181 --name coordinator2
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
    @Option(help: "Seconds a node may be down before its replicas are re-created on other nodes (restoring the replication factor).")
    var replicaLossTimeout = 60.0
    @Option(help: "etcd endpoints, HOST:PORT[,HOST:PORT…]: keep the cluster metadata there (several coordinators, one leader).")
    var etcd: String?
    @Option(help: "Key prefix of this cluster's metadata in etcd.") var etcdPrefix = "/shoal/"
    @Option(help: "This coordinator's name, unique in the cluster (default: its --listen address).") var name: String?
    @Option(help: "Seconds of the leader's etcd lease: another coordinator takes over within this after the leader dies.")
    var leaseTtlSeconds = 4
    @Option(help: "Seconds to wait for etcd at start before giving up (exit 1).") var etcdTimeoutSeconds = 10
    @Option(help: .hidden) var clockOffsetMs: Int64 = 0
    @OptionGroup(title: "Limits") var limitOptions: LimitOptions

    func validate() throws {
        if let etcd { _ = try EtcdClient.parseEndpoints(etcd) }
        guard (2...600).contains(leaseTtlSeconds) else { throw ValidationError("--lease-ttl-seconds must be 2…600") }
        if clockOffsetMs != 0 && etcd == nil { throw ValidationError("--clock-offset-ms (for tests) needs --etcd") }
        guard replicaLossTimeout.isFinite, replicaLossTimeout > 0 else {
            throw ValidationError("--replica-loss-timeout must be a positive number of seconds")
        }
    }

    func run() async throws {
        let (host, port) = try parseAddress(listen)
        let logger = makeLogger(label: "shoal.coordinator", level: logLevel)
        let moves = MoveOptions(rateLimit: moveRateLimit, retryFor: .seconds(moveRetrySeconds), indexWait: .seconds(moveIndexWaitSeconds),
                                replicaLossTimeout: .milliseconds(Int64(replicaLossTimeout * 1000)))
        let limits = limitOptions.limits
        let sweep = Duration.seconds(max(1, orphanSweepSeconds))
        let clustered: EtcdCoordinator?
        let runtime: CoordinatorRuntime
        if let etcd {
            let settings = EtcdCoordinator.Settings(
                endpoints: try EtcdClient.parseEndpoints(etcd), prefix: etcdPrefix, name: name ?? listen, address: listen,
                leaseTTL: .seconds(leaseTtlSeconds), connectTimeout: .seconds(max(1, etcdTimeoutSeconds)), importDirectory: data,
                clockOffsetMillis: clockOffsetMs)
            do {
                clustered = try await EtcdCoordinator.open(settings, logger: logger, nodes: .channels(limits: limits), moves: moves, sweepInterval: sweep, limits: limits)
            } catch {
                printError("shoal coordinator: \(error)")
                throw ExitCode(1)
            }
            runtime = clustered!.runtime
        } else {
            clustered = nil
            runtime = try CoordinatorRuntime(dataDirectory: data, name: name ?? listen, logger: logger, nodes: .channels(limits: limits), moves: moves, sweepInterval: sweep, limits: limits)
        }
        let addresses = nodes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        await runtime.join(addresses, timeout: .seconds(30), logger: logger)
        let server = try Server(maxMessageBytes: limits.maxMessageBytes, maxConcurrentCalls: limits.maxConcurrentCalls)
        try runtime.register(on: server)
        let bound = try server.start(host: host, port: port)
        clustered?.start(logger: logger)
        if let portFile { try Data("\(bound)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic) }
        logger.info("coordinator serving", metadata: ["address": "\(host):\(bound)", "nodes": "\(runtime.cluster.snapshot.nodes.count)"])
        let signal = await waitForTermination()
        logger.info("coordinator shutting down", metadata: ["signal": "\(signal)"])
        await clustered?.stop()
        runtime.stop()
        await server.shutdown(grace: shutdownGrace)
        logger.info("coordinator stopped")
    }
}
