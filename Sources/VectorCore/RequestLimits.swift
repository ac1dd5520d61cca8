import Foundation

/// Every limit on what one request (or one process) may ask for: the one
/// definition the coordinator, the shard node and `shoal serve` share, so a
/// request the coordinator accepts is accepted by its nodes and the reverse.
///
/// A value is handed to each service at init (from the command line flags of
/// `LimitOptions`, or the defaults below); nothing reads a global. Processes of
/// one cluster should run with the same values. Each breach is answered with a
/// status whose message names the limit (its flag, e.g. `--max-in-values`) and
/// changes nothing: INVALID_ARGUMENT for a malformed request (too long a list,
/// too much metadata), RESOURCE_EXHAUSTED for a request too large to serve or a
/// node too busy to take it (retry later or split the request).
///
/// Parameter ranges that are not resource limits but properties of the index
/// (HNSW `m`, `ef_construction`, `ef`) are the static `hnsw…` ranges: fixed, so
/// a replica persisted by one process loads in any other.
public struct RequestLimits: Sendable, Hashable {
    // MARK: requests

    /// Largest `k + offset` of one search (and `k` of one shard search). Default 10,000.
    public var maxK = 10_000
    /// Points of one Upsert, ids of one Delete or Get, ops of one node write batch,
    /// records of one scan page. Default 10,000.
    public var maxPointsPerRequest = 10_000
    /// Searches in one SearchBatch. Default 1,000.
    public var maxSearchesPerBatch = 1_000
    /// Σ over the searches of one SearchBatch (or one Search) of `k + offset`: the
    /// hits the shards must find and the coordinator merge. Default 100,000.
    public var maxSearchWork = 100_000
    /// Largest request or reply message, in bytes (the gRPC server's limit). A search
    /// whose reply could exceed it is refused before any node is asked, and a merge
    /// that grows past it stops. Default 64 MiB.
    public var maxMessageBytes = 64 << 20

    // MARK: filters

    /// Values in one `in` / `not_in` list. Default 100,000.
    public var maxInValues = 100_000
    /// Nodes on the longest root-to-leaf path of a filter (a lone condition has depth 1). Default 32.
    public var maxFilterDepth = 32
    /// Conditions (leaves) in one filter. Default 1,024.
    public var maxFilterConditions = 1_024

    // MARK: metadata

    /// Bytes of one point's metadata, measured by `Metadata.measuredBytes` (a UTF-8
    /// size close to its encoding). Default 65,536.
    public var maxMetadataBytes = 65_536
    /// Fields of one point. Default 1,024.
    public var maxFieldsPerPoint = 1_024
    /// UTF-8 bytes of one field name (at least 1). Default 256.
    public var maxFieldNameBytes = 256
    /// UTF-8 bytes of a string value or one element of a string list. Default 65,536.
    public var maxStringBytes = 65_536
    /// Elements of one string list. Default 4,096.
    public var maxListElements = 4_096
    /// Distinct metadata field names a shard replica ever holds (the node's payload
    /// index interns them and never forgets one). A write batch that would go over
    /// is refused whole with RESOURCE_EXHAUSTED. Default 1,024.
    public var maxFieldNamesPerCollection = 1_024

    // MARK: a process's work

    /// Calls one process serves at once (Health excepted); the next one is refused
    /// with RESOURCE_EXHAUSTED at once, never queued. Default 1,024.
    public var maxConcurrentCalls = 1_024
    /// Write ops queued on a node for its committer; a batch that does not fit is
    /// refused with RESOURCE_EXHAUSTED at once. Default 100,000.
    public var maxQueuedWriteOps = 100_000
    /// Points written on a node but not yet in its graphs (summed over the node's
    /// replicas); above it upserts are refused with RESOURCE_EXHAUSTED until the
    /// indexer catches up (deletes are still taken). Default 1,000,000.
    public var maxIndexBacklog = 1_000_000
    /// Threads that run a node's reads (searches, gets, counts); 0: one per core.
    public var readThreads = 0
    /// Reads that may wait for one of those threads; the next is refused with
    /// RESOURCE_EXHAUSTED at once. Default 64.
    public var maxQueuedReads = 64
    /// The longest a read may wait for a thread, in milliseconds: one that would wait
    /// longer (by the recent reads' run time) is refused with RESOURCE_EXHAUSTED at
    /// once, and one that still waited longer is refused instead of run. Default 250.
    public var maxReadWaitMs = 250
    /// Reads (Search, SearchBatch, Get, Count) a coordinator runs at once; the next
    /// is refused with RESOURCE_EXHAUSTED at once. Default 256.
    public var maxConcurrentReads = 256

    /// `maxReadWaitMs` as a duration.
    public var maxReadWait: Duration { .milliseconds(maxReadWaitMs) }

    /// The read threads a node starts: `readThreads`, or one per core.
    public var effectiveReadThreads: Int {
        readThreads > 0 ? readThreads : ProcessInfo.processInfo.activeProcessorCount
    }

    public init() {}

    // MARK: HNSW parameter ranges (fixed)

    /// A collection's vector dimension.
    public static let dimension: ClosedRange<UInt32> = 1...65_536
    /// HNSW `m`: links per node (the index's own bounds).
    public static let hnswM: ClosedRange<UInt32> = 2...128
    /// HNSW `ef_construction`: the beam while inserting.
    public static let hnswEfConstruction: ClosedRange<UInt32> = 4...4_096
    /// HNSW `ef`, a collection's default or one search's: the beam while searching.
    public static let hnswEf: ClosedRange<UInt32> = 1...100_000
    /// The HNSW parameters a 0 in a config stands for.
    public static let hnswDefaults = (m: UInt32(16), efConstruction: UInt32(200), ef: UInt32(64))

    /// A collection's HNSW parameters with each 0 replaced by its default; INVALID_ARGUMENT
    /// naming the field if one is out of its range. The coordinator (CreateCollection)
    /// and the node (CreateReplica, its catalog) both resolve configs with this.
    public static func resolveHNSW(m: UInt32, efConstruction: UInt32, ef: UInt32) throws(ShoalError)
        -> (m: UInt32, efConstruction: UInt32, ef: UInt32)
    {
        let resolved = (
            m: m == 0 ? hnswDefaults.m : m,
            efConstruction: efConstruction == 0 ? hnswDefaults.efConstruction : efConstruction,
            ef: ef == 0 ? hnswDefaults.ef : ef)
        try check(resolved.m, in: hnswM, name: "hnsw.m")
        try check(resolved.efConstruction, in: hnswEfConstruction, name: "hnsw.ef_construction")
        try check(resolved.ef, in: hnswEf, name: "hnsw.ef")
        return resolved
    }

    /// One search's `k` and `offset` (k ≥ 1, k + offset ≤ `maxK`) and `ef` (0: the
    /// collection's; else within `hnswEf`). INVALID_ARGUMENT naming the field.
    public func checkSearch(k: UInt32, offset: UInt32, ef: UInt32) throws(ShoalError) {
        guard k >= 1, Int(k) <= maxK else {
            throw .invalidArgument("k must be 1…\(maxK) (--max-k), got \(k)")
        }
        guard Int(offset) + Int(k) <= maxK else {
            throw .invalidArgument("offset + k must be at most \(maxK) (--max-k), got \(Int(offset) + Int(k))")
        }
        if ef != 0 { try Self.check(ef, in: Self.hnswEf, name: "ef") }
    }

    /// Refuses a request carrying more than `maxPointsPerRequest` items with
    /// RESOURCE_EXHAUSTED; `what` names them ("an upsert holds … points").
    public func checkCount(_ count: Int, _ what: String) throws(ShoalError) {
        guard count <= maxPointsPerRequest else {
            throw ShoalError(.resourceExhausted, "\(what) at most \(maxPointsPerRequest) (--max-points-per-request), got \(count); split it")
        }
    }

    private static func check(_ value: UInt32, in range: ClosedRange<UInt32>, name: String) throws(ShoalError) {
        guard range.contains(value) else {
            throw .invalidArgument("\(name) must be \(range.lowerBound)…\(range.upperBound), got \(value)")
        }
    }
}
