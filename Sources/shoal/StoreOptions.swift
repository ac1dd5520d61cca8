import ArgumentParser
import ShardNode

/// The node-store flags `shoal node` and `shoal serve` share.
struct StoreOptions: ParsableArguments {
    @Option(help: "Keep a deleted id's tombstone this long (seconds; longer than any request lasts, 60 s).")
    var tombstoneRetentionSeconds = 300.0
    @Option(help: "Address space all replica graphs may reserve, in bytes (default: 64 TiB, or half of RLIMIT_AS).")
    var maxAddressSpaceBytes: Int = ShardStore.defaultAddressSpaceBudget

    func validate() throws {
        guard tombstoneRetentionSeconds.isFinite, tombstoneRetentionSeconds > 0 else {
            throw ValidationError("--tombstone-retention-seconds must be a positive number of seconds")
        }
        guard maxAddressSpaceBytes > 0 else { throw ValidationError("--max-address-space-bytes must be positive") }
    }

    func apply(to options: inout ShardStore.Options) {
        options.tombstoneRetention = .milliseconds(Int64(tombstoneRetentionSeconds * 1000))
        options.maxAddressSpace = maxAddressSpaceBytes
    }
}
