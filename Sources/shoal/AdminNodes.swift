import ArgumentParser
import ShoalProto
import ShoalRPC

/// `shoal admin nodes`: every node the coordinator knows.
struct AdminNodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the nodes with their state, replicas and points.",
        discussion: """
            STATE is active, draining or unreachable (did not answer its health check).
            HEALTH is the coordinator's running health monitor: up, suspect (a check or a
            call failed) or down (3 checks in a row failed; reads avoid it).

            Examples:
              shoal admin nodes
              shoal admin nodes --coordinator 127.0.0.1:7100 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let nodes = try await client.call(AdminRPC.listNodes, Shoal_V1_ListNodesRequest()).nodes
        if client.json { return printJSON(nodes.map(nodeObject)) }
        if nodes.isEmpty { print("no nodes") } else { printTable(nodeHeader, nodes.map(nodeRow)) }
    }
}

/// `shoal admin add-node`: registers a running node.
struct AdminAddNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-node",
        abstract: "Register a running node by its address; it may then receive replicas.",
        discussion: """
            The coordinator asks the node's health check for its id. Exit 1 if the node
            does not answer, 2 if it is registered already.

            Examples:
              shoal node --listen 127.0.0.1:7104 --data run/node4 &
              shoal admin add-node 127.0.0.1:7104
              shoal admin add-node 127.0.0.1:7104 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "HOST:PORT of the node's gRPC server.") var address: String

    func validate() throws { _ = try parseAddress(address) }

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let node = try await client.call(AdminRPC.addNode, .with { $0.address = address }).node
        if client.json { return printJSON(nodeObject(node)) }
        print("added node \(node.nodeID)\(node.nodeName.isEmpty ? "" : " (\(node.nodeName))") at \(node.address): \(node.state.name)")
    }
}

/// `shoal admin remove-node`: forgets a node.
struct AdminRemoveNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-node",
        abstract: "Forget a node. Refused (exit 2) while it holds replicas: drain it first.",
        discussion: """
            With --force the node is removed with its replicas: shards it held fall below
            their replication factor. A shard whose only replica it holds would be lost:
            that is refused (exit 2) unless --accept-data-loss is given too.

            Examples:
              shoal admin drain node3 --wait && shoal admin remove-node node3
              shoal admin remove-node 3f2a1b0c --force
              shoal admin remove-node 3f2a1b0c --force --accept-data-loss
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "The node: id, unique id prefix or unique name.") var node: String
    @Flag(help: "Remove it even if it still holds replicas.") var force = false
    @Flag(help: "With --force: also if a shard would be left with no replica (its data is lost).") var acceptDataLoss = false

    func validate() throws {
        if acceptDataLoss && !force { throw ValidationError("--accept-data-loss goes with --force") }
    }

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let target = try client.node(node, in: try await client.nodeNames())
        _ = try await client.call(AdminRPC.removeNode, .with {
            $0.nodeID = target.nodeID
            $0.force = force
            $0.acceptDataLoss = acceptDataLoss
        })
        if client.json { return printJSON(["removed": target.nodeID, "force": force, "accept_data_loss": acceptDataLoss]) }
        print("removed node \(target.nodeID) (\(target.address))")
    }
}

/// `shoal admin drain`: moves every replica off a node.
struct AdminDrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Move every replica off a node; it receives no new replicas.",
        discussion: """
            Each replica moves to the least-loaded active node that can take it; then,
            if that left the active nodes uneven (one of them already held the drained
            node's shards), a few replicas move among them too. Prints the moves (with
            their tasks); --dry-run plans them without starting anything. --wait follows the moves until they finish (exit 3 if one fails).

            Examples:
              shoal admin drain node3 --dry-run
              shoal admin drain node3 --wait
              shoal admin drain 3f2a1b0c --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "The node: id, unique id prefix or unique name.") var node: String
    @Flag(help: "Plan only: print the moves, start nothing.") var dryRun = false
    @Flag(help: "Follow the moves until they finish.") var wait = false

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let names = try await client.nodeNames()
        let target = try client.node(node, in: names)
        let moves = try await client.call(AdminRPC.drainNode, .with {
            $0.nodeID = target.nodeID
            $0.dryRun = dryRun
        }).moves
        let empty = "node \(names.short(target.nodeID)) holds no replicas"
        try await reportMoves(moves, client: client, names: names, dryRun: dryRun, wait: wait, empty: empty)
    }
}

/// Prints the moves a drain or rebalance planned or started (with `extra` JSON fields),
/// then, with `wait`, follows their tasks to the end.
func reportMoves(_ moves: [Shoal_V1_MovePlan], client: AdminClient, names: NodeNames, dryRun: Bool, wait: Bool,
                 empty: String, extra: [String: Any] = [:], afterTable: () -> Void = {}) async throws {
    let ids = moves.map(\.taskID).filter { !$0.isEmpty }
    let waited = wait && !dryRun && !ids.isEmpty
    if !client.json {
        if moves.isEmpty { print(empty) } else { printTable(planHeader, moves.map { planRow($0, names: names) }) }
        afterTable()
        if dryRun && !moves.isEmpty { print("dry run: nothing started") }
    }
    let tasks = waited ? try await TaskWatcher(client: client, names: names).follow(ids) : []
    if client.json {
        var document = extra.merging(["moves": moves.map(planObject), "dry_run": dryRun]) { $1 }
        if waited { document["tasks"] = tasks.map(taskObject) }
        printJSON(document)
    }
    if waited { try finishWaiting(tasks, names: names, json: client.json) }
}
