import Foundation
import Logging
import ShoalProto
import ShoalRPC
import Synchronization
import VectorCore

/// Owns the cluster state: changes go through this actor one at a time and are
/// persisted before they take effect; readers take `snapshot`, a copy.
///
/// It also counts the requests in flight per state epoch (`withState`), so a
/// shard move can wait until no request still routes by an older placement
/// (`waitForRequests(before:)`) before its next step.
public actor ClusterController {
    let store: any MetadataStore
    let logger: Logger
    let nodes: NodeDirectory
    /// The nodes' health, read latencies and load as this coordinator sees them.
    public nonisolated let health: NodeHealthMonitor
    /// Whether this coordinator leads, and with which term.
    public nonisolated let leadership: any Leadership
    private nonisolated let current: Mutex<Current>
    /// The lowest term this leader's node commands carry (see `commandTerm`).
    private nonisolated let termFloor = Atomic<UInt64>(0)
    /// Collections being created or deleted: their names are taken until the
    /// nodes' replicas are made or gone, so the two never interleave.
    private var collectionsChanging: Set<String> = []
    /// Move executions running, by collection.
    private nonisolated let executions = Mutex<[String: Int]>([:])

    private struct Current: ~Copyable {
        var state: ClusterState
        /// The metadata store's revision of `state`.
        var revision: Int64
        /// Requests in flight, by the epoch of the state they route by.
        var inFlight: [UInt64: Int] = [:]
    }

    /// A controller over `store`, starting from `loaded` (what `store.load()` answered).
    public init(
        store: any MetadataStore, loaded: StoredState?, leadership: any Leadership = SoloLeadership(), nodes: NodeDirectory,
        health: NodeHealthMonitor? = nil, logger: Logger
    ) {
        self.store = store
        self.nodes = nodes
        self.health = health ?? NodeHealthMonitor(directory: nodes)
        self.logger = logger
        self.leadership = leadership
        self.current = Mutex(Current(state: loaded?.state ?? ClusterState(), revision: loaded?.revision ?? 0))
    }

    /// The state as of now (a value: later changes do not affect it).
    public nonisolated var snapshot: ClusterState { current.withLock { $0.state } }

    /// The state and its metadata revision, as of now.
    public nonisolated var stored: StoredState { current.withLock { StoredState(state: $0.state, revision: $0.revision) } }

    /// Takes `stored` as the state if it is newer than the one held (from the watch,
    /// a reload, or a commit); never goes back. Returns whether it was taken.
    @discardableResult
    public nonisolated func publish(_ stored: StoredState) -> Bool {
        current.withLock { current in
            guard stored.revision > current.revision else { return false }
            current.state = stored.state
            current.revision = stored.revision
            return true
        }
    }

    /// Reads the newest state from the metadata store and takes it (UNAVAILABLE if
    /// the store cannot be reached).
    public nonisolated func refresh() async throws {
        if let newest = try await store.load() { publish(newest) }
    }

    /// The term this leader's commands to nodes carry: its election term, raised past
    /// every term a node reports having seen (`raiseCommandTerm`), so it stays above
    /// an earlier leader's even when etcd's revisions restarted lower (etcd restored
    /// from an older snapshot). 0 for `shoal serve` (nodes do not fence it).
    /// FAILED_PRECONDITION if this coordinator does not lead now.
    nonisolated func commandTerm() throws(ShoalError) -> UInt64 {
        let term = UInt64(try leaderTerm())
        return term == 0 ? 0 : max(term, termFloor.load(ordering: .acquiring))
    }

    /// Makes later commands carry a term above `seen` (a term some node has seen).
    nonisolated func raiseCommandTerm(above seen: UInt64) {
        guard let term = leadership.currentTerm, term > 0, seen >= (try? commandTerm()) ?? 0 else { return }
        termFloor.max(seen + 1, ordering: .acquiringAndReleasing)
        logger.warning("a node has seen a leader term at or above this leader's: its commands carry a higher one",
                       metadata: ["seen": "\(seen)", "term": "\(seen + 1)"])
    }

    /// This coordinator's term, or FAILED_PRECONDITION if it does not lead now.
    nonisolated func leaderTerm() throws(ShoalError) -> Int64 {
        guard let term = leadership.currentTerm else {
            throw .failedPrecondition("this coordinator does not lead the cluster (any more); the leader makes this change")
        }
        return term
    }

    /// Runs one request against the state as of now, counted as in flight under that
    /// state's epoch until `body` returns.
    public nonisolated func withState<R>(_ body: (ClusterState) async throws -> R) async rethrows -> R {
        let state = beginRequest()
        defer { endRequest(state) }
        return try await body(state)
    }

    /// The state as of now, with one request counted in flight under its epoch until
    /// `endRequest(state)`: `withState` for a request that completes through a callback.
    public nonisolated func beginRequest() -> ClusterState {
        current.withLock { current in
            current.inFlight[current.state.epoch, default: 0] += 1
            return current.state
        }
    }

    /// Ends a request `beginRequest` counted.
    public nonisolated func endRequest(_ state: ClusterState) {
        current.withLock { current in
            let left = current.inFlight[state.epoch, default: 1] - 1
            current.inFlight[state.epoch] = left == 0 ? nil : left
        }
    }

    /// Runs one read against the state as of now (counted in flight, see `withState`);
    /// when a node refuses it as routed by a stale placement (ABORTED: its replica is
    /// fenced past that state), reads the newest state from the metadata and runs it
    /// again, at most 3 times in all.
    public nonisolated func withCurrentPlacement<R>(_ body: (ClusterState) async throws -> R) async throws -> R {
        var attempt = 1
        while true {
            do {
                return try await withState(body)
            } catch let error as ShoalError where error.code == .aborted && attempt < 3 {
                attempt += 1
                try await refresh()
            }
        }
    }

    /// Returns once no request routed by a state older than `epoch` is in flight.
    public nonisolated func waitForRequests(before epoch: UInt64) async {
        await wait(while: { current.withLock { $0.inFlight.keys.contains { $0 < epoch } } }, every: .milliseconds(2),
                   warning: "still waiting for requests that route by an older placement", ["epoch": "\(epoch)"])
    }

    /// Polls `busy` every `interval` until it is false, warning every 10 s.
    private nonisolated func wait(
        while busy: @Sendable () -> Bool, every interval: Duration, warning: Logger.Message, _ metadata: Logger.Metadata
    ) async {
        var nextWarning = ContinuousClock.now + .seconds(10)
        while busy(), !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if ContinuousClock.now >= nextWarning {
                logger.warning(warning, metadata: metadata)
                nextWarning = ContinuousClock.now + .seconds(10)
            }
        }
    }

    /// Applies `change` to the newest state, stores it (one compare-and-swap on the
    /// revision it was computed from), then publishes it. On a conflict (another
    /// commit, here or at another coordinator, came first) it reloads and applies
    /// `change` again, so `change` must depend only on the state it is given.
    /// `asLeader`: only while this coordinator leads, fenced by its term (etcd
    /// refuses the change once another leader was elected). Returns the new state.
    @discardableResult
    nonisolated func commit(
        asLeader: Bool = true, _ change: (inout ClusterState) throws(ShoalError) -> Void
    ) async throws -> ClusterState {
        for _ in 0..<Self.commitAttempts {
            let base = stored
            var next = base.state
            try change(&next)
            if next == base.state { return next }
            if next.epoch == base.state.epoch { next.epoch += 1 }
            let term = asLeader ? try leaderTerm() : nil
            if let revision = try await store.store(next, previous: base.state, over: base.revision, term: term) {
                publish(StoredState(state: next, revision: revision))
                return next
            }
            try await refresh()
        }
        throw ShoalError(.unavailable, "the cluster state kept changing under this change (\(Self.commitAttempts) attempts); try again")
    }

    /// Compare-and-swap attempts of one commit.
    static let commitAttempts = 50

    /// Registers the node at `address` (learning its id from Health), unless known.
    public func join(address: String, timeout: Duration) async throws -> NodeInfo {
        if let known = snapshot.nodes.values.first(where: { $0.address == address }) { return known }
        let transport = try nodes.transport(for: address)
        let deadline = ContinuousClock.now + timeout
        var lastError: any Error = ShoalError(.unavailable, "node \(address) did not answer")
        while ContinuousClock.now < deadline {
            do {
                let health = try await transport.call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: .seconds(2))
                if let existing = snapshot.nodes[health.nodeID] {
                    if existing.address != address {
                        try await commit(asLeader: false) { state throws(ShoalError) in state.nodes[health.nodeID]?.address = address }
                        logger.info("node moved", metadata: ["node": "\(health.nodeID)", "address": "\(address)"])
                    }
                    return snapshot.nodes[health.nodeID]!
                }
                try await commit(asLeader: false) { state throws(ShoalError) in
                    if state.nodes[health.nodeID] == nil { try state.addNode(id: health.nodeID, address: address) }
                }
                logger.info("node joined", metadata: ["node": "\(health.nodeID)", "address": "\(address)"])
                return snapshot.nodes[health.nodeID]!
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        throw lastError
    }

    /// Registers the node at `address` (Admin.AddNode): ALREADY_EXISTS if it is in
    /// the cluster, UNAVAILABLE if it does not answer Health. A removed node comes back.
    public func addNode(address: String) async throws -> NodeInfo {
        _ = try Self.validateAddress(address)
        let state = snapshot
        if let known = state.nodes.values.first(where: { $0.address == address && $0.state != .removed }) {
            throw ShoalError(.alreadyExists, "node \(known.id) at \(address) is already in the cluster")
        }
        let health: Shoal_V1_HealthResponse
        do {
            health = try await nodes.transport(for: address).call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: .seconds(5))
        } catch {
            throw ShoalError(.unavailable, "no Shoal node answers at \(address): \(error)")
        }
        try await commit { state throws(ShoalError) in
            if state.nodes[health.nodeID]?.state == .removed {
                try state.readdNode(id: health.nodeID, address: address)
            } else {
                try state.addNode(id: health.nodeID, address: address)
            }
        }
        logger.info("node added", metadata: ["node": "\(health.nodeID)", "address": "\(address)"])
        return snapshot.nodes[health.nodeID]!
    }

    /// HOST:PORT, or INVALID_ARGUMENT.
    static func validateAddress(_ address: String) throws(ShoalError) -> String {
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
              let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
            throw .invalidArgument("address \(address.debugDescription) is not HOST:PORT")
        }
        return address
    }

    /// Creates the collection's replicas on their nodes, then records it. If any node
    /// fails, the replicas already made are dropped and nothing is recorded. A replica
    /// a node still holds under that name is dropped first only if the metadata records
    /// the old collection's deletion (it was deleted while the node was down); any
    /// other is an orphan the metadata does not know, and the create is refused
    /// (FAILED_PRECONDITION) rather than destroy data: see `shoal admin orphans`.
    public func createCollection(_ request: Shoal_V1_CollectionConfig) async throws -> CollectionConfig {
        let state = snapshot
        var config = try CollectionConfig(resolving: request, liveNodes: state.liveNodes.count)
        config.uid = UUID().uuidString.lowercased()
        if state.collections[config.name] != nil {
            throw ShoalError(.alreadyExists, "collection \(config.name) already exists")
        }
        try reserve(config.name)
        defer { collectionsChanging.remove(config.name) }
        let shards = try PlacementPlanner.plan(
            shardCount: config.shardCount, replicationFactor: config.replicationFactor,
            nodes: Array(state.nodes.values), load: state.replicaCounts)
        try await admit(config, shards: shards, state: state)
        var created: [(address: String, shard: UInt32, incarnation: UInt32)] = []
        do {
            for shard in shards {
                for replica in shard.replicas {
                    let address = state.nodes[replica.nodeId]?.address ?? ""
                    let incarnation = try await createEmptyReplica(config, shard: shard.shardId, on: replica.nodeId, address: address, state: state)
                    created.append((address, shard.shardId, incarnation))
                }
            }
            try await commit { state throws(ShoalError) in try state.addCollection(config, shards: shards) }
        } catch {
            let term = (try? commandTerm()) ?? 0
            for made in created where leadership.currentTerm != nil {
                _ = try? await nodes.transport(for: made.address).call(ShardRPC.dropReplica, .with {
                    $0.replica = .with { $0.collection = config.name; $0.shardID = made.shard }
                    $0.incarnation = made.incarnation
                    $0.term = term
                }, timeout: .seconds(30))
            }
            if let error = error as? ShoalError, error.code != .unavailable { throw error }
            throw ShoalError(.unavailable, "could not create collection \(config.name): \(error)")
        }
        logger.info("collection created", metadata: ["collection": "\(config.name)", "shards": "\(config.shardCount)", "dimension": "\(config.dimension)"])
        return config
    }

    /// A new, empty replica of `config`'s `shard` on a node; returns its incarnation.
    private func createEmptyReplica(
        _ config: CollectionConfig, shard: UInt32, on node: String, address: String, state: ClusterState
    ) async throws -> UInt32 {
        let transport = try nodes.transport(for: address)
        let term = try commandTerm()
        let request = Shoal_V1_CreateReplicaRequest.with {
            $0.config = config.proto
            $0.shardID = shard
            $0.term = term
        }
        let reply = try await transport.call(ShardRPC.createReplica, request, timeout: .seconds(30))
        if reply.created { return reply.incarnation }
        let held = try? await transport.call(ShardRPC.stats, .with { $0.replica = request.config.name.isEmpty ? .init() : .with {
            $0.collection = config.name; $0.shardID = shard } }, timeout: .seconds(10)).replicas.first
        guard let held, held.incarnation == reply.incarnation,
              state.dropIsDecided(collection: config.name, shard: shard, incarnation: held.incarnation, on: node, uid: held.config.uid) else {
            throw ShoalError(.failedPrecondition,
                "node \(node) already holds a replica of shard \(shard) of \(config.name) that the cluster metadata does not place (incarnation \(reply.incarnation)); nothing was created. Keep it with `shoal admin orphans --adopt` or `shoal admin recover`, or remove it with `shoal admin orphans --delete`")
        }
        _ = try await transport.call(ShardRPC.dropReplica, .with {
            $0.replica = .with { $0.collection = config.name; $0.shardID = shard }
            $0.incarnation = reply.incarnation
            $0.term = term
        }, timeout: .seconds(30))
        let again = try await transport.call(ShardRPC.createReplica, request, timeout: .seconds(30))
        guard again.created else { throw ShoalError(.unavailable, "node \(node) kept an old replica of shard \(shard) of \(config.name)") }
        return again.incarnation
    }

    /// Refuses (RESOURCE_EXHAUSTED, before any replica is made or anything persisted)
    /// a collection whose planned replicas would take a node past the address space
    /// it lets graphs reserve, as its Stats reports it (`IndexFootprint`, the formula
    /// the node admits by). A node that does not answer is left to refuse the create.
    private func admit(_ config: CollectionConfig, shards: [ShardAssignment], state: ClusterState) async throws {
        var planned: [String: Int] = [:]
        for shard in shards { for replica in shard.replicas { planned[replica.nodeId, default: 0] += 1 } }
        for (nodeID, count) in planned.sorted(by: { $0.key < $1.key }) {
            guard let address = state.nodes[nodeID]?.address,
                  let stats = try? await nodes.transport(for: address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(5)),
                  stats.addressSpaceBudget > 0 else { continue }
            let dimension = Int(config.dimension)
            let each = IndexFootprint.reservedBytes(
                dimension: dimension, m: Int(config.hnsw.m), capacity: Int(stats.replicaCapacity),
                quantized: IndexFootprint.quantizedByDefault(dimension: dimension))
            let (need, overflow) = each.multipliedReportingOverflow(by: count)
            let free = stats.addressSpaceBudget - min(stats.addressSpaceBudget, stats.addressSpaceReserved)
            if overflow || UInt64(need) > free {
                throw ShoalError(.resourceExhausted,
                    "collection \(config.name) needs \(overflow ? "more than \(Int.max)" : "\(need)") bytes of address space on node \(nodeID) (\(count) replicas × \(each): dimension \(dimension), room for \(stats.replicaCapacity) points each); the node has \(free) of its \(stats.addressSpaceBudget) left (--max-address-space-bytes); use fewer shards or a smaller dimension")
            }
        }
    }

    /// Forgets the collection (ending its moves), waits for those moves to stop (they
    /// do at their next check), then drops every replica of it that a node holds,
    /// placed or left by a move (a node that is down keeps its replicas, which nothing
    /// reads; the janitor drops them when it is back, the deletion being on record).
    public func deleteCollection(_ name: String) async throws {
        guard let collection = snapshot.collections[name] else { throw ShoalError(.notFound, "collection \(name) does not exist") }
        try reserve(name)
        defer { collectionsChanging.remove(name) }
        try await commit { state throws(ShoalError) in try state.removeCollection(name, nowMs: nowMs()) }
        await wait(while: { executions.withLock { $0[name] != nil } }, every: .milliseconds(10),
                   warning: "still waiting for moves of a deleted collection to stop", ["collection": "\(name)"])
        let listing = await heldReplicas()
        await drop(listing, reason: "dropped a replica of a deleted collection") { state, node, replica in
            replica.replica.collection == name
                && state.dropIsDecided(collection: name, shard: replica.replica.shardID, incarnation: replica.incarnation, on: node.id,
                                       uid: replica.config.uid)
        }
        let answered = Set(listing.map(\.node.id))
        for node in Set(collection.shards.flatMap { $0.replicas.map(\.nodeId) }).subtracting(answered).sorted() {
            logger.warning("a node that did not answer keeps its replicas of a deleted collection", metadata: [
                "collection": "\(name)", "node": "\(node)"])
        }
        logger.info("collection deleted", metadata: ["collection": "\(name)"])
    }

    /// Runs a move's execution, counted under its collection so that deleting the
    /// collection can wait for it to stop.
    nonisolated func executingMove(of collection: String, _ body: () async -> Void) async {
        executions.withLock { $0[collection, default: 0] += 1 }
        defer {
            executions.withLock { running in
                let left = running[collection, default: 1] - 1
                running[collection] = left == 0 ? nil : left
            }
        }
        await body()
    }

    /// Takes `name` for a create or delete; FAILED_PRECONDITION while another runs.
    private func reserve(_ name: String) throws(ShoalError) {
        guard collectionsChanging.insert(name).inserted else {
            throw .failedPrecondition("collection \(name) is being created or deleted; try again when that finishes")
        }
    }
}
