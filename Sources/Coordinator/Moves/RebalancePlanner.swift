/// One shard as the rebalance planner sees it: its size and where its
/// replicas live.
public struct ShardLoad: Sendable, Hashable {
    public var collection: String
    public var shard: UInt32
    /// Points in the shard (each replica holds all of them).
    public var points: UInt64
    /// The node ids of the shard's current replicas.
    public var nodes: [String]

    public init(collection: String, shard: UInt32, points: UInt64, nodes: [String]) {
        self.collection = collection
        self.shard = shard
        self.points = points
        self.nodes = nodes
    }
}

/// One replica move: the replica of `collection`/`shard` on `from` goes to `to`.
public struct PlannedMove: Sendable, Hashable {
    public var collection: String
    public var shard: UInt32
    public var from: String
    public var to: String
    /// The shard's size, the load that leaves `from` and arrives on `to`.
    public var points: UInt64
    /// A move, or a task that restores the in-sync set (see `MoveKind`).
    public var kind: MoveKind
    /// A replicate task's lost replica (see `MoveRecord.replaces`).
    public var replaces: String?

    public init(collection: String, shard: UInt32, from: String, to: String, points: UInt64, kind: MoveKind = .move, replaces: String? = nil) {
        self.collection = collection
        self.shard = shard
        self.from = from
        self.to = to
        self.points = points
        self.kind = kind
        self.replaces = replaces
    }
}

/// Plans the replica moves of `shoal admin rebalance`. Pure: it reads loads
/// and node states and returns moves; running them is someone else's job.
///
/// Contract of `plan(shards:nodes:)`:
/// - a node's load is the sum of `points` over the replicas it holds;
/// - evacuation first: every replica on a node that is not `.up` (draining,
///   removed, or absent from `nodes`) moves to the least-loaded up node that
///   does not hold that shard yet (ties by node id); the largest shards move
///   first, then by (collection, shard, node id);
/// - then balancing among up nodes, one move at a time: over node pairs
///   (heavier, lighter) in order of decreasing load gap (ties by the node ids),
///   the first pair with an eligible shard gives the move. Eligible: on the
///   heavier node, not on the lighter one, and `0 < points < gap`, so the
///   move narrows that pair's gap. Preferred is the largest shard with
///   `2 × points ≤ gap` (closes the gap without overshooting); failing that,
///   the smallest one (the least overshoot). Ties by (collection, shard).
///   The plan stops when no pair has an eligible shard. Empty up nodes (a new
///   node) fill up this way;
/// - every move strictly lowers the sum of squared loads, so balancing ends.
///   The max−min spread itself may stay put for a move or two while several
///   nodes share the maximum, which is why that is not the measure;
/// - anti-affinity: no step puts a second replica of a shard on a node. The
///   moves apply in order, and the placement is valid after each one. A
///   replica may move twice (A → B while evacuating, B → C while balancing);
/// - a replica that no up node can take (every up node holds the shard
///   already, or there is no up node) stays where it is, and the plan has no
///   move for it: the caller sees the node is not empty and reports it;
/// - deterministic: the same input gives the same plan, whatever the order of
///   `nodes` and `shards`.
public enum RebalancePlanner {
    /// The moves that empty non-up nodes and even out points across up nodes
    /// (see the contract above).
    public static func plan(shards: [ShardLoad], nodes: [NodeInfo]) -> [PlannedMove] {
        var placement = Placement(shards: shards, up: nodes.filter { $0.state == .up }.map(\.id))
        var moves: [PlannedMove] = []
        for (index, node) in placement.evacuations() {
            guard let target = placement.leastLoadedUpNode(taking: index) else { continue }
            moves.append(placement.move(index, from: node, to: target))
        }
        while let (index, from, to) = placement.balancingMove() {
            moves.append(placement.move(index, from: from, to: to))
        }
        return moves
    }

    /// Points per node, summed over the replicas each holds (nodes without
    /// any are absent).
    public static func loads(of shards: [ShardLoad]) -> [String: UInt64] {
        var load: [String: UInt64] = [:]
        for shard in shards {
            for node in shard.nodes { load[node, default: 0] += shard.points }
        }
        return load
    }
}

/// The planner's working copy: shards sorted by (collection, shard), loads
/// kept in step with every move.
private struct Placement {
    var shards: [ShardLoad]
    /// Up node ids, sorted.
    let up: [String]
    var load: [String: UInt64]

    init(shards: [ShardLoad], up: [String]) {
        self.shards = shards.sorted { ($0.collection, $0.shard) < ($1.collection, $1.shard) }
        self.up = Set(up).sorted()
        load = RebalancePlanner.loads(of: self.shards)
        for node in self.up where load[node] == nil { load[node] = 0 }
    }

    /// Replicas on nodes that are not up, as (shard index, node): largest
    /// shards first, then by (collection, shard, node).
    func evacuations() -> [(Int, String)] {
        let upSet = Set(up)
        var result: [(Int, String)] = []
        for (index, shard) in shards.enumerated() {
            for node in shard.nodes.sorted() where !upSet.contains(node) { result.append((index, node)) }
        }
        // `shards` is sorted, so the index orders by (collection, shard).
        return result.sorted { a, b in
            let (pa, pb) = (shards[a.0].points, shards[b.0].points)
            return pa != pb ? pa > pb : (a.0, a.1) < (b.0, b.1)
        }
    }

    /// The least-loaded up node without a replica of shard `index` (ties by id).
    func leastLoadedUpNode(taking index: Int) -> String? {
        var best: String?
        for node in up where !shards[index].nodes.contains(node) {
            if best == nil || load[node]! < load[best!]! { best = node }
        }
        return best
    }

    /// The next balancing move as (shard index, from, to), or nil when no
    /// pair of up nodes has an eligible shard.
    func balancingMove() -> (Int, String, String)? {
        var pairs: [(gap: UInt64, from: String, to: String)] = []
        for from in up {
            for to in up where load[from]! > load[to]! { pairs.append((load[from]! - load[to]!, from, to)) }
        }
        pairs.sort { $0.gap != $1.gap ? $0.gap > $1.gap : ($0.from, $0.to) < ($1.from, $1.to) }
        for pair in pairs {
            if let index = pick(gap: pair.gap, from: pair.from, to: pair.to) { return (index, pair.from, pair.to) }
        }
        return nil
    }

    /// The shard to move from `from` to `to` across `gap`: the largest with
    /// `2 × points ≤ gap`, else the smallest with `points < gap`; nil if none.
    func pick(gap: UInt64, from: String, to: String) -> Int? {
        var under: Int?  // largest shard that does not overshoot
        var over: Int?  // smallest shard that overshoots but still narrows the gap
        for (index, shard) in shards.enumerated()
        where shard.points > 0 && shard.points < gap && shard.nodes.contains(from) && !shard.nodes.contains(to) {
            if shard.points <= gap / 2 {
                if under == nil || shard.points > shards[under!].points { under = index }
            } else if over == nil || shard.points < shards[over!].points {
                over = index
            }
        }
        return under ?? over
    }

    /// Moves the replica of shard `index` from `from` to `to`, updating loads.
    mutating func move(_ index: Int, from: String, to: String) -> PlannedMove {
        let points = shards[index].points
        if let slot = shards[index].nodes.firstIndex(of: from) { shards[index].nodes[slot] = to }
        load[from]! -= points
        load[to, default: 0] += points
        return PlannedMove(collection: shards[index].collection, shard: shards[index].shard,
                           from: from, to: to, points: points)
    }
}
