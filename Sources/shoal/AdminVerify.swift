import ArgumentParser
import ShoalProto
import ShoalRPC

/// `shoal admin verify`: whether each shard's replicas hold the same points.
struct AdminVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare the replicas of each shard: the same live points at the same versions.",
        discussion: """
            Reads every replica's (id, version) pairs (no vectors) and prints a row per
            replica: its live points, a digest of them and whether it matches the others;
            then a line per shard whose replicas differ, naming the nodes and sample ids
            (with each replica's version). A deleted point and no record are equal
            (tombstones are collected at different times). Ids the replicas disagree on are
            read again a few times first, so writes in flight are not reported. BEHIND
            counts the differing ids a replica lacks the newest record of (repair writes
            those to it).

            Exit codes: 0 every shard's replicas are identical; 1 some differ or cannot
            be read (or the coordinator is unavailable); 2 unknown collection or shard.

            Examples:
              shoal admin verify --collection faces
              shoal admin verify --collection faces --shard 3 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @OptionGroup var scope: ShardScope

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let reply = try await scope.call(AdminRPC.verifyCollection, on: client)
        try await conclude(reply, client: client, json: verificationObject(reply))
    }
}

/// `shoal admin repair`: copies the newest record of every differing id to the replicas that lack it.
struct AdminRepairCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Mend the shards whose replicas differ: the newest version of each point wins.",
        discussion: """
            Verifies (see verify), then for every id the replicas disagree on writes the
            record with the highest version (a point or a deletion) to every replica that
            does not hold it, and verifies again. Safe under live writes: a replica keeps
            whichever version is newer. Prints what was copied to each replica, then the
            new verification. Run by the leading coordinator (any one passes it on).

            Exit codes: 0 every shard's replicas are identical afterwards; 1 some still
            differ or cannot be read (or the coordinator is unavailable); 2 unknown
            collection or shard.

            Examples:
              shoal admin repair --collection faces
              shoal admin repair --collection faces --shard 3 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @OptionGroup var scope: ShardScope

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let reply = try await scope.call(AdminRPC.repairCollection, on: client)
        try await conclude(reply.verification, client: client,
                           json: ["repairs": reply.shards.map(repairObject), "verification": verificationObject(reply.verification)]) {
            repairLines(reply.shards, names: $0) + [""]
        }
    }
}

/// A request naming a collection and, optionally, one shard of it.
protocol CollectionShardRequest: Sendable {
    init()
    var collection: String { get set }
    var shardID: UInt32 { get set }
}

extension Shoal_V1_VerifyCollectionRequest: CollectionShardRequest {}
extension Shoal_V1_RepairCollectionRequest: CollectionShardRequest {}

/// `--collection` (default: the only one) and `--shard` of verify and repair.
struct ShardScope: ParsableArguments {
    @Option(help: "The collection (default: the only one).") var collection: String?
    @Option(help: "Only this shard.") var shard: UInt32?

    /// `rpc` called for this collection and shard.
    func call<Request: CollectionShardRequest, Response>(_ rpc: RPC<Request, Response>, on client: AdminClient) async throws -> Response {
        var request = Request()
        request.collection = try await client.collection(collection)
        if let shard { request.shardID = shard }
        return try await client.call(rpc, request)
    }
}

/// Prints `json` (with --json), or the `preface` lines and `verification` as a table
/// and lines; then exits 1 unless every shard is identical.
private func conclude(
    _ verification: Shoal_V1_VerifyCollectionResponse, client: AdminClient, json: [String: Any],
    preface: (NodeNames) -> [String] = { _ in [] }
) async throws {
    if client.json {
        printJSON(json)
    } else {
        let names = try await client.nodeNames()
        for line in preface(names) { print(line) }
        printTable(verifyHeader, verification.shards.flatMap { verifyRows($0, names: names) })
        for line in verifyLines(verification, names: names) { print(line) }
    }
    if !verification.identical { throw ExitCode(1) }
}

// MARK: - Formatting (pure)

let verifyHeader = ["SHARD", "NODE", "STATE", "POINTS", "DIGEST", "MATCH", "BEHIND"]

/// One row per replica; an unreachable one shows `-` and MATCH `unreachable`.
func verifyRows(_ shard: Shoal_V1_ShardVerification, names: NodeNames) -> [[String]] {
    shard.replicas.map { r in
        r.unreachable
            ? ["\(shard.shardID)", names.short(r.nodeID), r.state.name, "-", "-", "unreachable", "-"]
            : ["\(shard.shardID)", names.short(r.nodeID), r.state.name, grouped(r.pointCount), r.digest, r.matches ? "yes" : "no", "\(r.behind)"]
    }
}

/// `1 id`, `2,500 ids`.
func counted(_ n: UInt64, _ noun: String) -> String { "\(grouped(n)) \(noun)" + (n == 1 ? "" : "s") }

/// `live v17`, `deleted v20`, `absent`.
func recordText(_ state: Shoal_V1_ReplicaRecordState) -> String {
    state.kind == .absent ? "absent" : "\(state.kind.name) v\(state.version)"
}

extension Shoal_V1_ReplicaRecordState.Kind {
    /// `absent`, `deleted`, `live` (`unknown` for anything else).
    var name: String {
        switch self {
        case .absent: "absent"
        case .deleted: "deleted"
        case .live: "live"
        default: "unknown"
        }
    }
}

/// Below the table: per shard that cannot be read, the replicas and why; per shard
/// that differs, the nodes, how many ids and sample ids (then one line per sample id
/// with each replica's record); last, the summary (`3 of 6 shards differ`).
func verifyLines(_ reply: Shoal_V1_VerifyCollectionResponse, names: NodeNames) -> [String] {
    var lines: [String] = []
    for shard in reply.shards where !shard.identical {
        for r in shard.replicas where r.unreachable {
            lines.append("shard \(shard.shardID): node \(names.short(r.nodeID)) (\(r.address)) cannot be read: \(r.error)")
        }
        guard shard.differingCount > 0 else { continue }
        let differ = shard.replicas.filter { !$0.unreachable && !$0.matches }.map { names.short($0.nodeID) }
        let behind = shard.replicas.filter { $0.behind > 0 }.map { "\(names.short($0.nodeID)) on \($0.behind)" }
        lines.append("shard \(shard.shardID) differs: nodes \(differ.joined(separator: ", ")) disagree on \(counted(shard.differingCount, "id"))"
            + (behind.isEmpty ? "" : " (behind: \(behind.joined(separator: ", ")))")
            + "; e.g. \(shard.sample.map(\.id).joined(separator: ", "))")
        for sample in shard.sample {
            lines.append("  \(sample.id): " + sample.replicas.map { "\(names.short($0.nodeID)) \(recordText($0))" }.joined(separator: ", "))
        }
    }
    let bad = reply.shards.filter { !$0.identical }
    let unreadable = bad.filter { $0.replicas.contains(where: \.unreachable) }.count
    lines.append(bad.isEmpty
        ? (reply.shards.count == 1 ? "1 shard identical" : "all \(reply.shards.count) shards identical")
        : "\(bad.count) of \(reply.shards.count) shards differ" + (unreadable == 0 ? "" : " (\(unreadable) cannot be read in full)"))
    return lines
}

func verificationObject(_ reply: Shoal_V1_VerifyCollectionResponse) -> [String: Any] {
    ["collection": reply.collection, "identical": reply.identical, "shards": reply.shards.map { shard in
        ["shard": shard.shardID, "identical": shard.identical, "differing_count": shard.differingCount,
         "replicas": shard.replicas.map { r in
             ["node_id": r.nodeID, "address": r.address, "state": r.state.name, "unreachable": r.unreachable, "error": r.error,
              "points": r.pointCount, "tombstones": r.tombstoneCount, "digest": r.digest, "matches": r.matches, "behind": r.behind] as [String: Any]
         },
         "sample": shard.sample.map { sample in
             ["id": sample.id, "replicas": sample.replicas.map { ["node_id": $0.nodeID, "state": $0.kind.name, "version": $0.version] }] as [String: Any]
         }] as [String: Any]
    }]
}

/// Per shard: `shard 1: 3 ids differed; copied to 9d8e7f6a: 2 points, 1 deletion`, or that nothing differed.
func repairLines(_ shards: [Shoal_V1_ShardRepair], names: NodeNames) -> [String] {
    shards.map { shard in
        guard shard.differingCount > 0 else { return "shard \(shard.shardID): nothing to repair" }
        let copies = shard.replicas.map { r in
            "copied to \(names.short(r.nodeID)): \(counted(r.pointsCopied, "point")), \(counted(r.tombstonesCopied, "deletion"))"
                + (r.ignoredStale == 0 ? "" : " (\(grouped(r.ignoredStale)) already newer there)")
                + (r.error.isEmpty ? "" : "; failed: \(r.error)")
        }
        return "shard \(shard.shardID): \(counted(shard.differingCount, "id")) differed; " + (copies.isEmpty ? "nothing copied" : copies.joined(separator: "; "))
    }
}

func repairObject(_ shard: Shoal_V1_ShardRepair) -> [String: Any] {
    ["shard": shard.shardID, "differing_count": shard.differingCount, "replicas": shard.replicas.map { r in
        ["node_id": r.nodeID, "points_copied": r.pointsCopied, "tombstones_copied": r.tombstonesCopied,
         "ignored_stale": r.ignoredStale, "error": r.error] as [String: Any]
    }]
}
