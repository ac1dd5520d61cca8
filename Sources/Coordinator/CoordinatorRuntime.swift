import Foundation
import Logging
import ShoalProto
import Synchronization
import VectorCore

/// A coordinator's services: loads the cluster state (a local file, or etcd),
/// registers the nodes at `nodeAddresses` (learning their ids), moves the clock past
/// every version the nodes hold, and, while it leads, drops the replicas the
/// metadata decided to drop (then keeps doing so in the background) and runs the
/// shard moves (resuming unfinished ones).
public struct CoordinatorRuntime: Sendable {
    public let cluster: ClusterController
    public let vectorStore: VectorStoreService
    public let admin: AdminService
    public let scheduler: MoveScheduler
    public let janitor: ReplicaJanitor
    public let healer: ReplicaHealer
    /// How often the janitor looks for replicas to drop.
    let sweepInterval: Duration
    /// The janitor's background sweeps while this coordinator leads.
    private let sweeping = TaskSlot()
    /// The healer's background looks while this coordinator leads.
    private let healing = TaskSlot()
    /// How often the healer looks for replicas to catch up or re-create.
    static let healInterval: Duration = .seconds(1)

    public init(
        dataDirectory: String, name: String, logger: Logger, nodes: NodeDirectory,
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
        name: String, logger: Logger, nodes: NodeDirectory,
        moves: MoveOptions = MoveOptions(), sweepInterval: Duration = .seconds(10), limits: RequestLimits = RequestLimits(),
        versions: WriteVersions = WriteVersions(clock: HybridLogicalClock()),
        coordinators: (@Sendable () async throws -> Shoal_V1_ListCoordinatorsResponse)? = nil,
        notServingReason: @escaping @Sendable () -> String? = { nil }
    ) throws {
        cluster = ClusterController(store: store, loaded: loaded, leadership: leadership, nodes: nodes, logger: logger)
        let progress = MoveProgress()
        vectorStore = VectorStoreService(cluster: cluster, versions: versions, limits: limits, logger: logger)
        scheduler = MoveScheduler(cluster: cluster, progress: progress, options: moves, logger: logger)
        admin = AdminService(cluster: cluster, scheduler: scheduler, name: name, coordinators: coordinators, notServingReason: notServingReason)
        janitor = ReplicaJanitor(cluster: cluster)
        healer = ReplicaHealer(cluster: cluster, scheduler: scheduler, lossTimeout: moves.replicaLossTimeout)
        self.sweepInterval = sweepInterval
    }

    public func register(on server: any HandlerRegistry) throws {
        try vectorStore.register(on: server)
        try admin.register(on: server)
    }

    /// Joins every node (concurrently); a node that does not answer in `timeout` is
    /// logged and skipped. Then starts the nodes' health monitor (every coordinator
    /// runs one, leading or not, until `stop`) and observes the nodes' largest
    /// versions. A coordinator that leads for good (`SoloLeadership`) starts leading
    /// at once; one in a cluster leads when its session wins the election
    /// (`CoordinatorSession.run`).
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
        cluster.health.start { [cluster] in Array(cluster.snapshot.nodes.values) }
        let listing = await cluster.heldReplicas()
        for replica in listing.flatMap(\.replicas) { vectorStore.clock.observe(HLCVersion(rawValue: replica.maxVersion)) }
        if cluster.leadership is SoloLeadership { await lead(listing) }
    }

    /// Takes up the leader's work: reads the newest state, drops the replicas whose
    /// drop the metadata records (before any move runs), resumes the moves the state
    /// records as unfinished, and starts the janitor's background sweeps.
    public func lead() async { await lead(nil) }

    func lead(_ listing: [HeldReplicas]?) async {
        // Nothing is dropped or moved by a copy that may be stale: the newest state first
        // (a solo coordinator's file store is the newest by definition).
        while true {
            do {
                try await cluster.refresh()
                break
            } catch {
                cluster.logger.warning("could not read the newest cluster state on taking the lead; the janitor and moves wait",
                                       metadata: ["error": "\(error)"])
                if Task.isCancelled || cluster.leadership.currentTerm == nil { return }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        let listing = if let listing { listing } else { await cluster.heldReplicas() }
        await cluster.takeUpLead(listing)
        await janitor.sweep(listing)
        await scheduler.pump()
        let task = Task { [janitor, sweepInterval] in await janitor.run(every: sweepInterval) }
        sweeping.replace(with: task)
        healing.replace(with: Task { [healer] in await healer.run(every: Self.healInterval) })
    }

    /// Stops the nodes' health monitor (at shutdown).
    public func stop() {
        cluster.health.stop()
    }

    /// Stops the leader's work (this coordinator no longer leads): moves pause where
    /// they are recorded, for the next leader to resume.
    public func follow() async {
        sweeping.replace(with: nil)
        healing.replace(with: nil)
        await scheduler.stopAll()
    }
}

/// One background task at a time: a new one cancels the one before.
final class TaskSlot: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)

    func replace(with next: Task<Void, Never>?) {
        task.withLock { $0?.cancel(); $0 = next }
    }
}
