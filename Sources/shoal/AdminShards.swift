import ArgumentParser
import ShoalProto
import ShoalRPC

/// `shoal admin shards`: where every shard replica lives.
struct AdminShardsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "List the shard replicas: collection, shard, node, points and replica state.",
        discussion: """
            STATE is ready (serves reads), catching_up (a move's target), retiring
            (a move's source) or set_aside (a replica the node could not load at
            start: kept, not served; the reason is printed below the table).

            Examples:
              shoal admin shards
              shoal admin shards --collection faces --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Option(help: "Only this collection.") var collection: String?

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let names = try await client.nodeNames()
        let map = try await client.call(AdminRPC.shardMap, .with { $0.collection = collection ?? "" })
        let shards = map.shards
        let points = try await shardPoints(shards, client: client)
        let rows = shards.flatMap { shardRows($0, shardPoints: points[Key($0)] ?? 0, names: names) }
            + map.setAside.map { setAsideRow($0, names: names) }
        if client.json { return printJSON(rows.map(\.object)) }
        if rows.isEmpty { print("no shards") } else { printTable(shardHeader, rows.map(\.row)) }
        if !map.setAside.isEmpty {
            print("\nset aside (kept on the node, not served; the node could not load them at start):")
            for aside in map.setAside {
                print("  \(aside.collection)/\(aside.shardID) on \(names.short(aside.nodeID)) (incarnation \(aside.incarnation)): \(aside.reason)")
            }
        }
    }

    private struct Key: Hashable {
        let collection: String, shard: UInt32
        init(_ s: Shoal_V1_ShardPlacement) { (collection, shard) = (s.collection, s.shardID) }
    }

    /// Each shard's points: from the map, or, where the map leaves them 0, from
    /// DescribeCollection (one call per such collection).
    private func shardPoints(_ shards: [Shoal_V1_ShardPlacement], client: AdminClient) async throws -> [Key: UInt64] {
        var points = Dictionary(shards.map { (Key($0), $0.pointCount) }, uniquingKeysWith: { a, _ in a })
        let unfilled = Set(shards.filter { $0.pointCount == 0 }.map(\.collection))
        for name in unfilled.sorted() {
            let described = try await client.call(VectorStoreRPC.describeCollection, .with { $0.name = name })
            for shard in described.shards where points[Key(shard)] == 0 { points[Key(shard)] = shard.pointCount }
        }
        return points
    }
}

/// `shoal admin move`: moves one shard replica to another node.
struct AdminMoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Move a shard's replica to another node, online.",
        discussion: """
            Without --collection the only collection is meant; without --from, the
            node holding the shard's in-sync replica (of several, the one on the node
            holding the most replicas). The move runs as a task (see
            status, cancel); --wait follows it to the end and exits 3 if it fails or
            is rolled back.

            Examples:
              shoal admin move 3 --to node4
              shoal admin move 3 --collection faces --from node1 --to node4 --wait
              shoal admin move 0 --collection faces --to 9d8e7f6a --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "The shard id (0 ..< the collection's shard count).") var shard: UInt32
    @Option(help: "The target node: id, unique id prefix or unique name.") var to: String
    @Option(help: "The collection (default: the only one).") var collection: String?
    @Option(help: "The source node (default: the one holding the shard's in-sync replica; of several, the busiest node's).") var from: String?
    @Flag(help: "Follow the move until it finishes.") var wait = false

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let names = try await client.nodeNames()
        let target = try client.node(to, in: names)
        let source = try from.map { try client.node($0, in: names) }
        let name = try await client.collection(collection)
        let map = try await client.call(AdminRPC.shardMap, .with { $0.collection = name }).shards
        guard let placement = map.first(where: { $0.shardID == shard }) else {
            throw badInput("collection \(name) has no shard \(shard) (it has \(map.count): 0..<\(map.count))")
        }
        if placement.replicas.contains(where: { $0.nodeID == target.nodeID }) {
            throw badInput("shard \(shard) of \(name) is already on node \(names.short(target.nodeID))")
        }
        let fromID = try sourceNode(placement, given: source, names: names)
        let task = try await client.call(AdminRPC.moveShard, .with {
            $0.collection = name
            $0.shardID = shard
            $0.fromNodeID = fromID
            $0.toNodeID = target.nodeID
        }).task
        try await report(task, client: client, names: names)
    }

    /// The given source if it holds an in-sync replica, else the busiest node that does; exit 2 otherwise.
    private func sourceNode(_ placement: Shoal_V1_ShardPlacement, given: Shoal_V1_NodeInfo?, names: NodeNames) throws -> String {
        let ready = placement.replicas.filter { $0.state == .ready }.map(\.nodeID)
        let what = "shard \(placement.shardID) of \(placement.collection)"
        if let given {
            guard ready.contains(given.nodeID) else { throw badInput("node \(names.short(given.nodeID)) holds no ready (in-sync) replica of \(what)") }
            return given.nodeID
        }
        // Of several in-sync replicas, the one on the node holding the most replicas (ties: the smallest id).
        let load = Dictionary(names.nodes.map { ($0.nodeID, $0.replicaCount) }, uniquingKeysWith: { a, _ in a })
        guard let busiest = ready.min(by: { (-Int(load[$0] ?? 0), $0) < (-Int(load[$1] ?? 0), $1) }) else {
            throw badInput("\(what) has no in-sync replica to move")
        }
        return busiest
    }

    private func report(_ task: Shoal_V1_MoveTask, client: AdminClient, names: NodeNames) async throws {
        if !client.json { printTable(taskHeader, [taskRow(task, names: names)]) }
        guard wait else {
            if client.json { printJSON(taskObject(task)) }
            return
        }
        let final = try await TaskWatcher(client: client, names: names).follow([task.taskID], shown: [task])
        if client.json { printJSON(taskObject(final[0])) }
        try finishWaiting(final, names: names, json: client.json)
    }
}

/// `shoal admin rebalance`: evens out points across nodes.
struct AdminRebalanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance",
        abstract: "Plan and start moves that even out points across the active nodes.",
        discussion: """
            Prints the planned moves and each node's load before and after them, or
            "already balanced". --dry-run starts nothing; --wait follows the moves.

            Examples:
              shoal admin rebalance --dry-run
              shoal admin rebalance --collection faces --max-concurrent 2 --wait
              shoal admin rebalance --dry-run --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Flag(help: "Plan only: print the moves, start nothing.") var dryRun = false
    @Option(help: "Only this collection's shards.") var collection: String?
    @Option(help: "Moves running at once (default: the server's, 1).") var maxConcurrent: UInt32?
    @Flag(help: "Follow the moves until they finish.") var wait = false

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let names = try await client.nodeNames()
        let plan = try await client.call(AdminRPC.rebalance, .with {
            $0.dryRun = dryRun
            $0.collection = collection ?? ""
            $0.maxConcurrentMoves = maxConcurrent ?? 0
        })
        let extra: [String: Any] = ["load_before": plan.loadBefore.map(loadObject), "load_after": plan.loadAfter.map(loadObject),
                                    "balanced": plan.moves.isEmpty]
        try await reportMoves(plan.moves, client: client, names: names, dryRun: dryRun, wait: wait,
                              empty: "already balanced", extra: extra) {
            guard !plan.loadBefore.isEmpty || !plan.loadAfter.isEmpty else { return }
            print("")
            printTable(loadHeader, loadRows(before: plan.loadBefore, after: plan.loadAfter, names: names))
        }
    }
}
