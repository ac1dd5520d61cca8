import ArgumentParser
import GRPCBridge
import ShoalProto
import ShoalRPC

/// `shoal admin`: the operator's commands, a client of the coordinator's Admin service.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operate a cluster: nodes, shard placement, shard moves and rebalancing.",
        discussion: """
            --coordinator, --timeout and --json may come before or after the subcommand.
            --coordinator may name several coordinators of one cluster, comma-separated:
            a call that gets UNAVAILABLE goes to the next, in order, within --timeout
            (every call alike: when a coordinator dies after starting a change, the repeat
            may be refused, e.g. already exists or a move in progress; see status).
            With --json every subcommand prints one JSON document on stdout; errors go
            to stderr, prefixed "shoal admin: ".

            Examples:
              shoal admin nodes
              shoal admin --coordinator 127.0.0.1:7100 shards --collection faces
              shoal admin --coordinator 127.0.0.1:7100,127.0.0.1:7142 nodes
              shoal admin move 3 --collection faces --to node4 --wait
              shoal admin rebalance --dry-run
              shoal admin status --all --json
              shoal admin verify --collection faces

            A node may be named by its id, a unique id prefix (the tables show 8
            characters) or a unique node name.

            Exit codes:
              0  done
              1  the coordinator or a node is unavailable, or an internal error; verify and
                 repair: a shard's replicas differ or cannot be read
              2  bad input: an unknown node, collection, shard or task; already exists;
                 a failed precondition (e.g. removing a node that holds replicas)
              3  a move waited on (--wait, status --watch) ended failed or rolled_back
              64 the command line could not be parsed
            """,
        subcommands: [
            AdminNodesCommand.self, AdminShardsCommand.self, AdminAddNodeCommand.self, AdminDrainCommand.self,
            AdminRemoveNodeCommand.self, AdminMoveCommand.self, AdminRebalanceCommand.self, AdminStatusCommand.self,
            AdminCancelCommand.self, AdminCoordinatorsCommand.self, AdminOrphansCommand.self, AdminRecoverCommand.self,
            AdminVerifyCommand.self, AdminRepairCommand.self,
        ])

    @OptionGroup var coordinator: CoordinatorAddress
}

/// One transport to the coordinators (one channel each, failing over) for a whole admin command.
struct AdminClient {
    let options: CoordinatorAddress
    private let transport: FailoverTransport

    init(_ options: CoordinatorAddress) async throws {
        self.options = options
        transport = try await exitingOnFailure("shoal admin", options.address) { try options.transport() }
    }

    var json: Bool { options.json }

    /// A failed call prints `shoal admin: ADDRESS: CODE: message` and exits with `exitStatus(for:)`.
    func call<Request, Response>(_ rpc: RPC<Request, Response>, _ request: Request) async throws -> Response {
        try await exitingOnFailure("shoal admin", options.address) {
            try await transport.call(rpc, request, timeout: options.limit)
        }
    }

    func nodeNames() async throws -> NodeNames {
        NodeNames(try await call(AdminRPC.listNodes, Shoal_V1_ListNodesRequest()).nodes)
    }

    /// The node `text` names, or exit 2.
    func node(_ text: String, in names: NodeNames) throws -> Shoal_V1_NodeInfo {
        guard let node = names.resolve(text) else {
            throw badInput("unknown node \"\(text)\" (not a node id, unique id prefix or unique name; see shoal admin nodes)")
        }
        return node
    }

    /// `given`, or the only collection there is; exit 2 when there are none or several.
    func collection(_ given: String?) async throws -> String {
        if let given { return given }
        let names = try await call(VectorStoreRPC.listCollections, Shoal_V1_ListCollectionsRequest()).collections.map(\.name)
        guard names.count == 1 else {
            throw badInput(names.isEmpty ? "there are no collections" : "give --collection: there are \(names.count) collections (\(names.sorted().joined(separator: ", ")))")
        }
        return names[0]
    }
}

/// Prints `shoal admin: MESSAGE` to stderr; throw the result to exit 2.
func badInput(_ message: String) -> ExitCode {
    printError("shoal admin: \(message)")
    return ExitCode(2)
}
