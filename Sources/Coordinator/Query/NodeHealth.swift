import ShoalProto
import ShoalRPC
import Synchronization
import VectorCore

/// A node's health as this coordinator sees it.
public enum NodeHealth: String, Sendable {
    /// The last health check or data call succeeded.
    case up
    /// The last health check or a data call failed (fewer than `downAfter` checks in a row).
    case suspect
    /// `downAfter` health checks in a row failed: reads avoid it.
    case down

    /// After a failure short of `down`: up becomes suspect; suspect and down stay.
    mutating func suspect() {
        if self == .up { self = .suspect }
    }

    var proto: Shoal_V1_NodeHealth {
        switch self {
        case .up: .up
        case .suspect: .suspect
        case .down: .down
        }
    }
}

/// Health, read latencies and load of every node, as this coordinator sees them.
///
/// Contract:
/// - every `interval` it asks each node that is not removed for `Shard.Health`
///   (timeout `timeout`); a success makes the node `up`, a failure `suspect`, and
///   `downAfter` failures in a row `down` (`downSince` is when it went down);
/// - data calls report through `reportSuccess` (up, and a latency sample) and
///   `reportFailure` (suspect; only health checks make a node down);
/// - a node it never heard of is `up`.
public final class NodeHealthMonitor: Sendable {
    public struct Options: Sendable {
        /// Time between two rounds of health checks.
        public var interval: Duration = .milliseconds(500)
        /// How long one health check may take.
        public var timeout: Duration = .seconds(1)
        /// Failed checks in a row that make a node down.
        public var downAfter = 3
        /// Bounds of a hedging delay (a node's recent p95 read latency).
        public var minHedgeDelay: Duration = .milliseconds(5)
        public var maxHedgeDelay: Duration = .seconds(1)
        /// The hedging delay while a node has fewer than `minSamples` latency samples.
        public var defaultHedgeDelay: Duration = .milliseconds(50)
        public var minSamples = 20
        /// How long after a node refused a read as busy ("busy: …") reads that only it
        /// or other busy nodes could answer are refused here, without asking: under
        /// overload the refusal then costs no node round trip (and no node CPU).
        public var busyWindow: Duration = .milliseconds(10)

        public init() {}
    }

    private struct Node {
        var health: NodeHealth = .up
        var failedChecks = 0
        var downSince: ContinuousClock.Instant?
        var outstanding = 0
        var latencies = LatencyRing()
        /// When the node last refused a read as busy (cleared by its next answer).
        var busySince: ContinuousClock.Instant?

        mutating func markUp() {
            health = .up
            failedChecks = 0
            downSince = nil
        }
    }

    public let options: Options
    private let directory: NodeDirectory
    private let nodes = Mutex<[String: Node]>([:])
    /// Turns round-robin ties between equally loaded replicas.
    private let rotation = Atomic<UInt>(0)
    private let checking = TaskSlot()

    public init(directory: NodeDirectory, options: Options = Options()) {
        self.directory = directory
        self.options = options
    }

    public func state(of nodeID: String) -> NodeHealth { nodes.withLock { $0[nodeID]?.health ?? .up } }

    /// When the node went down, if it is down.
    public func downSince(_ nodeID: String) -> ContinuousClock.Instant? { nodes.withLock { $0[nodeID]?.downSince } }

    /// A data call to the node failed as if it could not answer: it is suspect (unless down).
    public func reportFailure(_ nodeID: String) {
        nodes.withLock { nodes in
            nodes[nodeID, default: Node()].health.suspect()
        }
    }

    /// A data call to the node succeeded in `latency`: it is up (and not busy).
    public func reportSuccess(_ nodeID: String, latency: Duration) {
        nodes.withLock { nodes in
            nodes[nodeID, default: Node()].latencies.add(latency)
            nodes[nodeID]!.markUp()
            nodes[nodeID]!.busySince = nil
        }
    }

    /// The node refused a read for want of a read thread.
    public func reportBusy(_ nodeID: String) {
        nodes.withLock { $0[nodeID, default: Node()].busySince = .now }
    }

    /// Of `nodeIDs`, those that refused a read as busy within `busyWindow`.
    func busy(_ nodeIDs: Set<String>) -> Set<String> {
        let now = ContinuousClock.now
        return nodes.withLock { nodes in
            nodeIDs.filter { id in nodes[id]?.busySince.map { now - $0 < options.busyWindow } ?? false }
        }
    }

    /// Requests to the node in flight now (`begin` … `end`).
    public func outstanding(_ nodeID: String) -> Int { nodes.withLock { $0[nodeID]?.outstanding ?? 0 } }
    func begin(_ nodeID: String) { nodes.withLock { $0[nodeID, default: Node()].outstanding += 1 } }
    func end(_ nodeID: String) { nodes.withLock { $0[nodeID, default: Node()].outstanding -= 1 } }

    /// How long to wait for the node before asking another replica: its recent p95
    /// read latency within the bounds, or the default before it has enough samples.
    public func hedgeDelay(for nodeID: String) -> Duration {
        let p95 = nodes.withLock { $0[nodeID]?.latencies.percentile(0.95, minSamples: options.minSamples) }
        return min(max(p95 ?? options.defaultHedgeDelay, options.minHedgeDelay), options.maxHedgeDelay)
    }

    /// `items` in the order to ask them: nodes not down first (all, if all are down),
    /// then fewest requests outstanding, ties in turn (round robin).
    func preferred<T>(_ items: [T], node: (T) -> String) -> [T] {
        guard items.count > 1 else { return items }
        let turn = Int(rotation.add(1, ordering: .relaxed).newValue % UInt(items.count))
        let rotated = (0..<items.count).map { items[($0 + turn) % items.count] }
        let keys = nodes.withLock { nodes in
            rotated.map { (nodes[node($0)]?.health == .down, nodes[node($0)]?.outstanding ?? 0) }
        }
        return rotated.indices.sorted { (keys[$0].0 ? 1 : 0, keys[$0].1, $0) < (keys[$1].0 ? 1 : 0, keys[$1].1, $1) }
            .map { rotated[$0] }
    }

    /// Per shard of one read, its replicas (`readers[s]`) in the order to ask them. The
    /// first choices ask as few nodes as cover every shard, since each node asked costs
    /// a call on both sides (on a small machine more than searching a small shard):
    /// greedily the node holding most of the shards still uncovered, ties by nodes
    /// not down, fewest requests outstanding, then in turn (round robin, so successive
    /// reads use different covers). The shards two chosen nodes share go to whichever
    /// has fewer so far. A shard whose replicas are all on down nodes still gets one.
    /// Each shard's other replicas follow as `preferred` orders them (the hedges and
    /// retries).
    func readOrder(_ readers: [[ShardTarget]]) -> [[ShardTarget]] {
        let nodeIDs = Array(Set(readers.joined().map(\.nodeID))).sorted()
        guard nodeIDs.count > 1 else { return readers }
        let turn = Int(rotation.add(1, ordering: .relaxed).newValue % UInt(nodeIDs.count))
        let keys = nodes.withLock { nodes in
            Dictionary(uniqueKeysWithValues: nodeIDs.enumerated().map { i, id in
                (id, (down: nodes[id]?.health == .down, outstanding: nodes[id]?.outstanding ?? 0,
                      rank: (i - turn + nodeIDs.count) % nodeIDs.count))
            })
        }
        var uncovered = Set(readers.indices)
        var chosen: [String] = []
        while !uncovered.isEmpty {
            var best: (id: String, covers: Int)?
            for id in nodeIDs where !chosen.contains(id) {
                let covers = uncovered.count(where: { s in readers[s].contains { $0.nodeID == id } })
                guard covers > 0 else { continue }
                if let current = best {
                    let (a, b) = (keys[id]!, keys[current.id]!)
                    let better = (a.down ? 1 : 0, -covers, a.outstanding, a.rank) < (b.down ? 1 : 0, -current.covers, b.outstanding, b.rank)
                    if !better { continue }
                }
                best = (id, covers)
            }
            guard let pick = best else { break }
            chosen.append(pick.id)
            uncovered = uncovered.filter { s in !readers[s].contains { $0.nodeID == pick.id } }
        }
        // Shards with the fewest chosen holders first, each to its least-used holder.
        var used = [String: Int]()
        var first = [Int: ShardTarget]()
        let holders = readers.map { replicas in replicas.filter { chosen.contains($0.nodeID) } }
        for s in readers.indices.sorted(by: { (holders[$0].count, $0) < (holders[$1].count, $1) }) {
            guard let target = holders[s].min(by: {
                (used[$0.nodeID, default: 0], chosen.firstIndex(of: $0.nodeID)!) < (used[$1.nodeID, default: 0], chosen.firstIndex(of: $1.nodeID)!)
            }) else { continue }
            used[target.nodeID, default: 0] += 1
            first[s] = target
        }
        return readers.indices.map { s in
            guard let target = first[s] else { return preferred(readers[s]) { $0.nodeID } }
            return [target] + preferred(readers[s].filter { $0.nodeID != target.nodeID }) { $0.nodeID }
        }
    }

    /// Checks the nodes `nodes()` lists (those not removed) every `interval` until `stop`.
    public func start(nodes: @escaping @Sendable () -> [NodeInfo]) {
        let task = Task { [self] in
            while !Task.isCancelled {
                let started = ContinuousClock.now
                await checkOnce(nodes())
                try? await Task.sleep(until: started + options.interval)
            }
        }
        checking.replace(with: task)
    }

    public func stop() { checking.replace(with: nil) }

    /// One round: every node not removed is asked for Health at once.
    func checkOnce(_ listed: [NodeInfo]) async {
        await withTaskGroup(of: Void.self) { group in
            for node in listed where node.state != .removed {
                group.addTask { [self] in
                    let ok = await check(node.address)
                    record(check: ok, of: node.id)
                }
            }
        }
    }

    private func check(_ address: String) async -> Bool {
        do {
            _ = try await directory.transport(for: address).call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: options.timeout)
            return true
        } catch {
            return false
        }
    }

    private func record(check ok: Bool, of nodeID: String) {
        nodes.withLock { nodes in
            var node = nodes[nodeID, default: Node()]
            if ok {
                node.markUp()
            } else {
                node.failedChecks += 1
                if node.failedChecks >= options.downAfter {
                    if node.health != .down { node.downSince = .now }
                    node.health = .down
                } else {
                    node.health.suspect()
                }
            }
            nodes[nodeID] = node
        }
    }
}

/// The latest `capacity` latency samples of one node, with a cached quantile: every
/// read asks for the hedging delay, and sorting 256 samples each time cost more
/// than the rest of the coordinator's bookkeeping (perf, issue 13).
struct LatencyRing {
    static let capacity = 256
    /// Samples added between two recomputations of the cached quantile.
    static let refreshEvery = 32
    private var samples: [Duration] = []
    private var next = 0
    private var addedSinceCache = 0
    private var cached: (p: Double, value: Duration)?

    mutating func add(_ sample: Duration) {
        if samples.count < Self.capacity { samples.append(sample) } else { samples[next] = sample }
        next = (next + 1) % Self.capacity
        addedSinceCache += 1
    }

    /// The `p` quantile (0…1) of the samples held, nil with fewer than `minSamples`;
    /// recomputed once `refreshEvery` samples came in since the last time (or for a new `p`).
    mutating func percentile(_ p: Double, minSamples: Int) -> Duration? {
        guard samples.count >= max(1, minSamples) else { return nil }
        if let cached, cached.p == p, addedSinceCache < Self.refreshEvery { return cached.value }
        let sorted = samples.sorted()
        let value = sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        cached = (p, value)
        addedSinceCache = 0
        return value
    }
}
