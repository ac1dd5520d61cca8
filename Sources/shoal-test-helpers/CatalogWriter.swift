import ArgumentParser
import Foundation
import ShardNode
import VectorCore

/// Writes a replica's catalog entry into a stopped node's data folder, as the node
/// itself would record a created replica, without admitting or loading it: the
/// crash-loop regression test starts a node on a folder holding a replica it cannot
/// load (say dimension 65,536 over a small address-space budget).
struct CatalogWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog-writer",
        abstract: "Write a replica catalog entry into a node's data folder (the node must be stopped)."
    )

    @Option(help: "The node's data folder (`shoal node --data`; for `shoal serve`, DATA/node).") var data: String
    @Option(help: "Collection name.") var collection: String
    @Option(help: "Shard number.") var shard: UInt32 = 0
    @Option(help: "Replica number (incarnation).") var number: UInt32 = 1000
    @Option(help: "Vector dimension.") var dimension: Int = 65_536

    func run() throws {
        try ShardStore.writeCatalogEntry(
            directory: URL(fileURLWithPath: data), ReplicaRef(collection: collection, shard: shard), number: number,
            config: ReplicaConfig(dimension: dimension, metric: .l2))
        print("catalog entry written: \(collection)/\(shard) number \(number) dimension \(dimension)")
    }
}
