import ArgumentParser
import Foundation
import ShoalProto
import ShoalRPC

/// `shoal admin coordinators`: every coordinator and which one leads.
struct AdminCoordinatorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinators",
        abstract: "List the coordinators of the cluster, their role, and which one leads.",
        discussion: """
            The leader runs moves, rebalancing and the janitor; every coordinator serves
            the VectorStore API and passes changes on to the leader. TERM is the leader's
            term (it fences a deposed leader's commands). Read from the cluster metadata.

            Examples:
              shoal admin coordinators
              shoal admin --coordinator 127.0.0.1:7100,127.0.0.1:7142 coordinators --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let reply = try await client.call(AdminRPC.listCoordinators, Shoal_V1_ListCoordinatorsRequest())
        if client.json {
            return printJSON(["leader": reply.leader, "coordinators": reply.coordinators.map(coordinatorObject)])
        }
        printTable(["NAME", "ADDRESS", "ROLE", "TERM", "STARTED"], reply.coordinators.map { c in
            [c.name, c.address, roleName(c.role), c.term == 0 ? "-" : String(c.term), startedText(c.startedUnixMs)]
        })
        print(reply.leader.isEmpty ? "no leader now (an election is under way)" : "leader: \(reply.leader)")
    }
}

/// `shoal admin orphans`: replicas the metadata does not place; adopt or delete them.
struct AdminOrphansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orphans",
        abstract: "List replicas the nodes hold that the metadata neither places nor decided to drop.",
        discussion: """
            Such replicas are kept (never dropped on a guess): after a lost or restored
            cluster metadata, a node may hold shards the metadata no longer names.
            --adopt puts them back into the metadata (into their shard's placement while
            it has fewer replicas than its replication factor, or as a new collection
            from the replica's configuration); --delete ID removes one for good.

            Examples:
              shoal admin orphans
              shoal admin orphans --adopt --dry-run
              shoal admin orphans --adopt --collection faces
              shoal admin orphans --delete 3f2a…/faces/3/7
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Option(help: "Only this collection's orphans.") var collection: String?
    @Flag(help: "Put the orphans back into the metadata.") var adopt = false
    @Flag(help: "With --adopt: only report what would be adopted.") var dryRun = false
    @Option(help: "Remove the orphan with this id (NODE/COLLECTION/SHARD/INCARNATION, as listed).") var delete: String?

    func validate() throws {
        if adopt && delete != nil { throw ValidationError("give --adopt or --delete, not both") }
        if dryRun && !adopt { throw ValidationError("--dry-run goes with --adopt") }
    }

    func run() async throws {
        let client = try await AdminClient(coordinator)
        if let delete {
            let reply = try await client.call(AdminRPC.deleteOrphan, .with { $0.id = delete })
            if client.json { return printJSON(["id": delete, "deleted": reply.deleted]) }
            return print(reply.deleted ? "deleted orphan \(delete)" : "orphan \(delete) was already gone")
        }
        if adopt {
            let reply = try await client.call(AdminRPC.adoptOrphans, .with {
                $0.collection = collection ?? ""
                $0.dryRun = dryRun
            })
            if client.json {
                return printJSON(["adopted": reply.adopted.map(orphanObject), "collections_created": reply.collectionsCreated,
                                  "skipped": reply.skipped.map { ["orphan": orphanObject($0.orphan), "reason": $0.reason] },
                                  "dry_run": dryRun])
            }
            if reply.adopted.isEmpty { print("nothing to adopt") } else { printTable(orphanHeader, reply.adopted.map(orphanRow)) }
            for name in reply.collectionsCreated { print("collection \(name) \(dryRun ? "would be" : "was") created from its replicas") }
            for skip in reply.skipped { print("kept as orphan \(skip.orphan.id): \(skip.reason)") }
            if dryRun { print("dry run: nothing changed") }
            return
        }
        let reply = try await client.call(AdminRPC.listOrphans, .with { $0.collection = collection ?? "" })
        if client.json {
            return printJSON(["orphans": reply.orphans.map(orphanObject), "unreachable_nodes": reply.unreachableNodes,
                              "needs_recover": reply.needsRecover])
        }
        if reply.orphans.isEmpty { print("no orphans") } else { printTable(orphanHeader, reply.orphans.map(orphanRow)) }
        for node in reply.unreachableNodes { print("node \(node) did not answer: its replicas are not listed") }
        if !reply.needsRecover.isEmpty { print("needs recover: \(reply.needsRecover)") }
    }
}

/// `shoal admin recover`: rebuilds the metadata from what the nodes hold.
struct AdminRecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Rebuild collections and placements from the replicas the nodes hold.",
        discussion: """
            For a cluster whose metadata (etcd's data) was lost or restored from an old
            backup: every replica the metadata does not know is adopted back, and a
            collection it does not know is created from its replicas' configuration.
            Nothing is deleted; what cannot be adopted stays listed by
            `shoal admin orphans`. Shards no node holds are reported as missing.

            Examples:
              shoal admin recover --dry-run
              shoal admin recover --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Flag(help: "Only report what would be recovered.") var dryRun = false

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let reply = try await client.call(AdminRPC.recover, .with { $0.dryRun = dryRun })
        func shardObject(_ s: Shoal_V1_RecoveredShard) -> [String: Any] {
            ["collection": s.collection, "shard": Int(s.shardID), "nodes": s.nodeIds]
        }
        if client.json {
            return printJSON(["collections_created": reply.collectionsCreated, "shards": reply.shards.map(shardObject),
                              "missing": reply.missing.map(shardObject), "unreachable_nodes": reply.unreachableNodes,
                              "skipped": reply.skipped.map { ["orphan": orphanObject($0.orphan), "reason": $0.reason] },
                              "removed": reply.removed.map(shardObject), "moves_ended": reply.movesEnded, "dry_run": dryRun])
        }
        for gone in reply.removed {
            print("placement of shard \(gone.shardID) of \(gone.collection) on \(gone.nodeIds.joined()) \(dryRun ? "would be" : "was") removed: the node does not hold it (or it was mid-move)")
        }
        for move in reply.movesEnded { print("\(move) \(dryRun ? "would be" : "was") ended") }
        for name in reply.collectionsCreated { print(dryRun ? "collection \(name) would be recovered" : "collection \(name) recovered") }
        if reply.shards.isEmpty { print("no replicas to recover") } else {
            printTable(["COLLECTION", "SHARD", "NODES"], reply.shards.map { [$0.collection, String($0.shardID), $0.nodeIds.joined(separator: ",")] })
        }
        for shard in reply.missing { print("missing: shard \(shard.shardID) of \(shard.collection) is on no node that answered") }
        for skip in reply.skipped { print("kept as orphan \(skip.orphan.id): \(skip.reason)") }
        for node in reply.unreachableNodes { print("node \(node) did not answer: run recover again once it is back") }
        if dryRun { print("dry run: nothing changed") }
    }
}

private let orphanHeader = ["ID", "COLLECTION", "SHARD", "NODE", "POINTS", "REASON"]

private func orphanRow(_ o: Shoal_V1_OrphanReplica) -> [String] {
    [o.id, o.collection, String(o.shardID), String(o.nodeID.prefix(8)), grouped(o.points), o.reason]
}

private func orphanObject(_ o: Shoal_V1_OrphanReplica) -> [String: Any] {
    ["id": o.id, "node": o.nodeID, "collection": o.collection, "shard": Int(o.shardID), "incarnation": Int(o.incarnation),
     "points": Int(o.points), "max_version": Int(o.maxVersion), "reason": o.reason]
}

private func roleName(_ role: Shoal_V1_CoordinatorRole) -> String {
    switch role {
    case .leader: "leader"
    case .follower: "follower"
    default: "unknown"
    }
}

private func coordinatorObject(_ c: Shoal_V1_CoordinatorInfo) -> [String: Any] {
    ["name": c.name, "address": c.address, "role": roleName(c.role), "term": Int(c.term), "started_unix_ms": Int(c.startedUnixMs),
     "revision": Int(c.revision)]
}

private func startedText(_ ms: Int64) -> String {
    guard ms > 0 else { return "-" }
    let seconds = max(0, Int(Date().timeIntervalSince1970) - Int(ms / 1000))
    return seconds < 120 ? "\(seconds)s ago" : seconds < 7200 ? "\(seconds / 60)m ago" : "\(seconds / 3600)h ago"
}
