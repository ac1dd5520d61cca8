import Etcd
import Foundation
import Logging
import ShoalProto
import Synchronization
import VectorCore

/// A coordinator of a cluster whose metadata lives in etcd (`shoal coordinator
/// --etcd`): its runtime over `EtcdMetadataStore`, led through its
/// `CoordinatorSession`, writing versions below the ceiling etcd keeps.
public struct EtcdCoordinator: Sendable {
    public let runtime: CoordinatorRuntime
    public let session: CoordinatorSession
    public let store: EtcdMetadataStore
    private let following = TaskSlot()
    private let campaigning = TaskSlot()

    /// What `open` needs besides the runtime's options.
    public struct Settings: Sendable {
        public var endpoints: [String]
        public var prefix: String
        /// Unique among the cluster's coordinators.
        public var name: String
        /// Where clients (and the other coordinators) reach this one.
        public var address: String
        public var leaseTTL: Duration
        /// How long the first contact with etcd may take before the start fails.
        public var connectTimeout: Duration
        /// A single coordinator's state folder: its state file is imported into an empty
        /// etcd once (then renamed `cluster-state.imported-to-etcd`).
        public var importDirectory: String?
        /// Added to the wall clock (tests of a clock that steps back).
        public var clockOffsetMillis: Int64

        public init(endpoints: [String], prefix: String, name: String, address: String, leaseTTL: Duration = .seconds(4),
                    connectTimeout: Duration = .seconds(10), importDirectory: String? = nil, clockOffsetMillis: Int64 = 0) {
            self.endpoints = endpoints
            self.prefix = prefix
            self.name = name
            self.address = address
            self.leaseTTL = leaseTTL
            self.connectTimeout = connectTimeout
            self.importDirectory = importDirectory
            self.clockOffsetMillis = clockOffsetMillis
        }
    }

    /// Reaches etcd (UNAVAILABLE after `connectTimeout`), loads the state, opens the
    /// session, takes this coordinator's version tie-break number and moves its clock
    /// past the stored ceiling.
    public static func open(
        _ settings: Settings, logger: Logger, nodes: NodeDirectory, moves: MoveOptions, sweepInterval: Duration, limits: RequestLimits
    ) async throws -> EtcdCoordinator {
        let client = try EtcdClient(endpoints: settings.endpoints)
        let store = EtcdMetadataStore(client: client, prefix: settings.prefix)
        let giveUp = ContinuousClock.now + settings.connectTimeout
        var loaded: StoredState?
        while true {
            do {
                loaded = try await store.load()
                break
            } catch let error as ShoalError where error.code == .unavailable || error.code == .deadlineExceeded {
                guard ContinuousClock.now < giveUp else {
                    throw ShoalError(.unavailable, "etcd at \(settings.endpoints.joined(separator: ",")) did not answer within \(settings.connectTimeout): \(error.message)")
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        if loaded == nil, let directory = settings.importDirectory,
           let local = try? FileMetadataStore(directory: directory, logger: logger).loadedAtStart {
            if let revision = try await store.store(local.state, previous: ClusterState(), over: 0, term: nil) {
                loaded = StoredState(state: local.state, revision: revision)
                let file = directory + "/" + ClusterStateStore.fileName
                try? FileManager.default.moveItem(atPath: file, toPath: file + ".imported-to-etcd")
                logger.warning("imported the local cluster state file into etcd; it is kept, renamed, and not read again",
                               metadata: ["file": "\(file).imported-to-etcd"])
            } else {
                loaded = try await store.load()
            }
        }
        let session = CoordinatorSession(client: client, store: store, name: settings.name, address: settings.address, ttl: settings.leaseTTL, logger: logger)
        try await session.open()
        let issuer = try await session.issuerNumber()
        let offset = settings.clockOffsetMillis
        let clock = HybridLogicalClock(issuer: issuer, wallClock: {
            let now = Int64(HybridLogicalClock.systemMillis())
            return UInt64(max(0, now + offset))
        })
        let versions = WriteVersions(clock: clock, ceiling: EtcdVersionCeiling(client: client, key: settings.prefix + "versions"))
        try await versions.start()
        logger.info("cluster metadata in etcd", metadata: [
            "endpoints": "\(settings.endpoints.joined(separator: ","))", "prefix": "\(settings.prefix)",
            "revision": "\(loaded?.revision ?? 0)", "issuer": "\(issuer)"])
        let box = RuntimeBox()
        let runtime = try CoordinatorRuntime(
            store: store, loaded: loaded, leadership: session, name: settings.name, logger: logger, nodes: nodes, moves: moves,
            sweepInterval: sweepInterval, limits: limits, versions: versions,
            coordinators: { try await Self.list(session, revision: box.revision()) })
        box.set(runtime.cluster)
        return EtcdCoordinator(runtime: runtime, session: session, store: store)
    }

    /// Follows the metadata (watch) and campaigns for the lead; call once the nodes joined.
    public func start(logger: Logger) {
        let cluster = runtime.cluster
        let store = store
        following.replace(with: Task { await store.follow(into: cluster, after: cluster.stored.revision, logger: logger) })
        let runtime = runtime
        let session = session
        campaigning.replace(with: Task {
            await session.run(onLead: { _ in await runtime.lead() }, onFollow: { await runtime.follow() })
        })
    }

    /// Stops leading and following, and ends the session (another coordinator leads at once).
    public func stop() async {
        campaigning.replace(with: nil)
        following.replace(with: nil)
        await runtime.follow()
        await session.close()
    }

    static func list(_ session: CoordinatorSession, revision: Int64) async throws -> Shoal_V1_ListCoordinatorsResponse {
        let (entries, leader, term) = try await session.coordinators()
        return .with { reply in
            reply.leader = leader?.name ?? ""
            reply.coordinators = entries.map { entry in
                .with {
                    let leads = entry.name == leader?.name
                    $0.name = entry.name
                    $0.address = entry.address
                    $0.role = leads ? .leader : .follower
                    $0.term = leads ? term : 0
                    $0.startedUnixMs = entry.startedMs
                    $0.revision = entry.name == session.me.name ? revision : 0
                }
            }
        }
    }
}

/// The controller, once made (the coordinator list closure is made before it).
private final class RuntimeBox: Sendable {
    private let cluster = Mutex<ClusterController?>(nil)
    func set(_ controller: ClusterController) { cluster.withLock { $0 = controller } }
    func revision() -> Int64 { cluster.withLock { $0?.stored.revision ?? 0 } }
}
