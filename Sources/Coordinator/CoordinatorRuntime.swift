import Foundation
import GRPCBridge
import Logging
import VectorCore

/// Starts a coordinator's services on `server`: loads the cluster state from
/// `dataDirectory`, registers the nodes at `nodeAddresses` (learning their ids),
/// moves the clock past every version the nodes hold, drops replicas no placement
/// names (then keeps doing so in the background), and resumes unfinished shard moves.
public struct CoordinatorRuntime: Sendable {
    public let cluster: ClusterController
    public let vectorStore: VectorStoreService
    public let admin: AdminService
    public let scheduler: MoveScheduler
    public let janitor: ReplicaJanitor
    /// - Parameter limits: what a request may ask for (the nodes should run with the same).
    /// How often the janitor looks for replicas nothing needs.
    let sweepInterval: Duration

    public init(
        dataDirectory: String, name: String, logger: Logger, nodes: NodeDirectory? = nil,
        moves: MoveOptions = MoveOptions(), sweepInterval: Duration = .seconds(10), limits: RequestLimits = RequestLimits(),
        notServingReason: @escaping @Sendable () -> String? = { nil }
    ) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let store = try FileMetadataStore(directory: dataDirectory, logger: logger)
        try self.init(
            store: store, loaded: store.loadedAtStart, name: name, logger: logger, nodes: nodes, moves: moves,
            sweepInterval: sweepInterval, limits: limits, notServingReason: notServingReason)
    }

    /// A runtime over `store` (which answered `loaded`), led as `leadership` says.
    public init(
        store: any MetadataStore, loaded: StoredState?, leadership: any Leadership = SoloLeadership(),
        name: String, logger: Logger, nodes: NodeDirectory? = nil,
        moves: MoveOptions = MoveOptions(), sweepInterval: Duration = .seconds(10), limits: RequestLimits = RequestLimits(),
        notServingReason: @escaping @Sendable () -> String? = { nil }
    ) throws {
        // Channels to the nodes carry messages as large as the server's (`limits.maxMessageBytes`).
        let nodes = nodes ?? NodeDirectory { try Channel(target: $0, maxMessageBytes: limits.maxMessageBytes) }
        cluster = ClusterController(store: store, loaded: loaded, leadership: leadership, nodes: nodes, logger: logger)
        let progress = MoveProgress()
        vectorStore = VectorStoreService(cluster: cluster, moves: progress, limits: limits, logger: logger)
        scheduler = MoveScheduler(cluster: cluster, progress: progress, options: moves, logger: logger)
        admin = AdminService(cluster: cluster, scheduler: scheduler, name: name, notServingReason: notServingReason)
        janitor = ReplicaJanitor(cluster: cluster)
        self.sweepInterval = sweepInterval
    }

    public func register(on server: Server) throws {
        try vectorStore.register(on: server)
        try admin.register(on: server)
    }

    /// Joins every node (concurrently); a node that does not answer in `timeout` is
    /// logged and skipped. Then observes the nodes' largest versions, drops orphan
    /// replicas (before any move runs), resumes the moves the state records as
    /// unfinished, and starts the janitor's background sweeps.
    public func join(_ nodeAddresses: [String], timeout: Duration, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            for address in nodeAddresses {
                group.addTask {
                    do { _ = try await cluster.join(address: address, timeout: timeout) } catch {
                        logger.error("node did not join", metadata: ["address": "\(address)", "error": "\(error)"])
                    }
                }
            }
        }
        let listing = await cluster.heldReplicas()
        for replica in listing.flatMap(\.replicas) { vectorStore.clock.observe(HLCVersion(rawValue: replica.maxVersion)) }
        await janitor.sweep(listing)
        await scheduler.pump()
        Task { [janitor, sweepInterval] in await janitor.run(every: sweepInterval) }
    }
}
