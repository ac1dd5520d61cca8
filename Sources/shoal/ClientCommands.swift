import ArgumentParser
import Foundation
import GRPCBridge
import ShoalProto
import ShoalRPC
import Synchronization
import VectorCore

/// Options shared by the commands that talk to a coordinator.
struct CoordinatorAddress: ParsableArguments {
    @Option(name: .customLong("coordinator"), help: ArgumentHelp(
        "HOST:PORT of the coordinator (the launch script's default), or several, comma-separated.",
        discussion: "With several, a call that gets UNAVAILABLE goes to the next, in order, within --timeout."))
    var address = "127.0.0.1:7100"
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 30
    @Flag(help: "Print JSON instead of a table.") var json = false

    var limit: Duration { .milliseconds(Int(timeout * 1000)) }

    /// The addresses in --coordinator.
    var targets: [String] {
        address.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func validate() throws {
        for target in targets { _ = try parseAddress(target) }
    }

    func call<Request, Response>(_ rpc: RPC<Request, Response>, _ request: Request) async throws -> Response {
        try await exitingOnFailure("shoal", address) {
            try await transport().call(rpc, request, timeout: limit)
        }
    }

    /// The process's one transport to these coordinators (so a command's calls share
    /// the channels and stick to the coordinator that answered).
    func transport() throws -> FailoverTransport {
        try coordinatorTransports.withLock { transports in
            if let known = transports[address] { return known }
            let made = try FailoverTransport(targets: targets)
            transports[address] = made
            return made
        }
    }
}

private let coordinatorTransports = Mutex<[String: FailoverTransport]>([:])

/// Runs `body`; a `ShoalError` is printed to stderr as `PREFIX: ADDRESS: CODE: message`
/// and becomes the exit status `exitStatus(for:)`.
func exitingOnFailure<T>(_ prefix: String, _ address: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ShoalError {
        printError("\(prefix): \(address): \(error)")
        throw ExitCode(exitStatus(for: error.code))
    }
}

/// 2 when the request was wrong (bad input, not found, already exists, failed
/// precondition, out of range); 1 when the service was unavailable or failed.
func exitStatus(for code: StatusCode) -> Int32 {
    switch code {
    case .invalidArgument, .notFound, .alreadyExists, .failedPrecondition, .outOfRange: 2
    default: 1
    }
}

/// `shoal collections`: the collections, their shape and size.
struct CollectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collections",
        abstract: "List the collections with their dimension, metric, shards and points.",
        discussion: """
            Examples:
              shoal collections
              shoal collections --coordinator 127.0.0.1:7100 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress

    func run() async throws {
        let list = try await coordinator.call(VectorStoreRPC.listCollections, Shoal_V1_ListCollectionsRequest())
        var rows: [[String]] = []
        var objects: [[String: Any]] = []
        for config in list.collections {
            let described = try await coordinator.call(VectorStoreRPC.describeCollection, .with { $0.name = config.name })
            let metric = (try? Metric(proto: config.metric))?.rawValue ?? "?"
            rows.append([config.name, "\(config.dimension)", metric, "\(config.shardCount)", "\(described.pointCount)"])
            objects.append(["name": config.name, "dimension": config.dimension, "metric": metric,
                            "shards": config.shardCount, "points": described.pointCount])
        }
        if coordinator.json {
            printJSON(objects)
        } else if rows.isEmpty {
            print("no collections")
        } else {
            printTable(["COLLECTION", "DIMENSION", "METRIC", "SHARDS", "POINTS"], rows)
        }
    }
}

/// `shoal search`: the nearest points to one vector.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search a collection for the nearest points to a vector.",
        discussion: """
            Examples:
              shoal search --collection faces --vector 0.1,0.2,0.3,0.4 --k 5
              shoal search --collection faces --vector-file query.json --exact --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Option(help: "The collection.") var collection: String
    @Option(help: "The query, comma-separated numbers.") var vector: String?
    @Option(help: "A file holding the query as a JSON array of numbers.") var vectorFile: String?
    @Option(help: "How many results.") var k: UInt32 = 10
    @Option(help: "HNSW beam width (default: the collection's).") var ef: UInt32?
    @Flag(help: "Exact search on every shard.") var exact = false
    @Flag(help: "Answer with the shards that respond if some do not.") var allowPartial = false
    @Flag(help: "Also show, shard by shard, how the search ran (node, strategy, distances computed).") var explain = false

    func validate() throws {
        if (vector == nil) == (vectorFile == nil) { throw ValidationError("give exactly one of --vector or --vector-file") }
    }

    func run() async throws {
        let query = try queryVector(vector, file: vectorFile)
        let reply = try await coordinator.call(VectorStoreRPC.search, .with {
            $0.collection = collection
            $0.vector = query
            $0.k = k
            if let ef { $0.ef = ef }
            $0.exact = exact
            $0.allowPartial = allowPartial
            $0.includeMetadata = true
            $0.explain = explain
        })
        let explained = reply.explain.map { e in
            ["shard": e.shardID, "node": e.nodeID, "strategy": e.strategy.name, "distances_computed": e.distancesComputed,
             "unindexed_scanned": e.unindexedScanned] as [String: Any]
        }
        if coordinator.json {
            printJSON([
                "hits": reply.hits.map { hit in
                    ["id": hit.id, "score": hit.score, "distance": hit.distance,
                     "metadata": hit.metadata.mapValues(jsonValue)] as [String: Any]
                },
                "partial": reply.partial, "missing_shards": reply.missingShards,
            ].merging(explain ? ["explain": explained] : [:]) { a, _ in a })
            return
        }
        let rows = reply.hits.enumerated().map { i, hit in
            ["\(i + 1)", hit.id, String(format: "%.4f", hit.score), String(format: "%.4f", hit.distance),
             hit.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(describe($0.value))" }.joined(separator: " ")]
        }
        if rows.isEmpty { print("no results") } else { printTable(["#", "ID", "SCORE", "DISTANCE", "METADATA"], rows) }
        if reply.partial { print("partial: shards \(reply.missingShards.map(String.init).joined(separator: ", ")) did not answer") }
        if explain {
            printTable(["SHARD", "NODE", "STRATEGY", "DISTANCES", "UNINDEXED"], reply.explain.map { e in
                ["\(e.shardID)", e.nodeID, e.strategy.name, "\(e.distancesComputed)", "\(e.unindexedScanned)"]
            })
        }
    }
}

/// The query of `--vector` (comma-separated numbers) or `--vector-file` (a JSON array).
func queryVector(_ vector: String?, file: String?) throws -> [Float] {
    if let vector {
        let parts = vector.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.allSatisfy({ $0 != nil }), !parts.isEmpty else { throw ValidationError("--vector must be comma-separated numbers") }
        return parts.map { $0! }
    }
    guard let file else { throw ValidationError("give exactly one of --vector or --vector-file") }
    let data = try Data(contentsOf: URL(fileURLWithPath: file))
    guard let numbers = try JSONSerialization.jsonObject(with: data) as? [NSNumber], !numbers.isEmpty else {
        throw ValidationError("\(file) must hold a JSON array of numbers")
    }
    return numbers.map { $0.floatValue }
}

extension Shoal_V1_SearchStrategy {
    /// As the clients name it (the Python client's `explain` strategies).
    var name: String {
        switch self {
        case .hnsw: "graph"
        case .hnswFiltered: "filtered_graph"
        case .exact: "exact"
        case .exactFiltered: "exact_over_matches"
        default: "unspecified"
        }
    }
}

func jsonValue(_ value: Shoal_V1_Value) -> Any {
    switch value.kind {
    case .stringValue(let s): s
    case .intValue(let i): i
    case .doubleValue(let d): d
    case .boolValue(let b): b
    case .stringList(let l): l.values
    case nil: NSNull()
    }
}

func describe(_ value: Shoal_V1_Value) -> String {
    switch value.kind {
    case .stringList(let l): "[" + l.values.joined(separator: ",") + "]"
    default: "\(jsonValue(value))"
    }
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { c, cell in c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
            .joined(separator: "  "))
    }
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
