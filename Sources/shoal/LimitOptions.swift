import ArgumentParser
import VectorCore

/// The `RequestLimits` flags: one spelling per limit, shared by `shoal serve`,
/// `shoal node` and `shoal coordinator` (`@OptionGroup`). Defaults are
/// `RequestLimits()`'s; run every process of a cluster with the same values.
struct LimitOptions: ParsableArguments {
    private static let defaults = RequestLimits()

    @Option(help: "Largest k + offset of one search.")
    var maxK = defaults.maxK
    @Option(help: "Points of one upsert, ids of one delete or get, ops of one node write batch, records of one scan page.")
    var maxPointsPerRequest = defaults.maxPointsPerRequest
    @Option(help: "Searches in one SearchBatch.")
    var maxSearchesPerBatch = defaults.maxSearchesPerBatch
    @Option(help: "Σ (k + offset) over the searches of one SearchBatch or Search.")
    var maxSearchWork = defaults.maxSearchWork
    @Option(help: "Largest request or reply message in bytes; searches whose reply could be larger are refused.")
    var maxMessageBytes = defaults.maxMessageBytes
    @Option(help: "Values in one filter in / not_in list.")
    var maxInValues = defaults.maxInValues
    @Option(help: "Nesting depth of a filter.")
    var maxFilterDepth = defaults.maxFilterDepth
    @Option(help: "Conditions in one filter.")
    var maxFilterConditions = defaults.maxFilterConditions
    @Option(help: "Metadata bytes of one point (UTF-8 names and values, 4 bytes per field, 8 per number).")
    var maxMetadataBytes = defaults.maxMetadataBytes
    @Option(help: "Metadata fields of one point.")
    var maxFieldsPerPoint = defaults.maxFieldsPerPoint
    @Option(help: "UTF-8 bytes of a metadata field name.")
    var maxFieldNameBytes = defaults.maxFieldNameBytes
    @Option(help: "UTF-8 bytes of a metadata string (or string list element).")
    var maxStringBytes = defaults.maxStringBytes
    @Option(help: "Elements of a metadata string list.")
    var maxListElements = defaults.maxListElements
    @Option(help: "Distinct metadata field names per collection shard on a node.")
    var maxFieldNames = defaults.maxFieldNamesPerCollection
    @Option(help: "Calls served at once by this process (Health excepted); more are refused at once.")
    var maxConcurrentCalls = defaults.maxConcurrentCalls
    @Option(help: "Write ops queued on a node for commit; more are refused at once.")
    var maxQueuedWriteOps = defaults.maxQueuedWriteOps
    @Option(help: "Points a node holds not yet in its graphs; above it upserts are refused until indexing catches up.")
    var maxIndexBacklog = defaults.maxIndexBacklog
    @Option(help: "Threads running a node's searches, gets and counts (0: one per core).")
    var readThreads = defaults.readThreads
    @Option(help: "Reads that may wait for one of those threads on a node; more are refused at once.")
    var maxQueuedReads = defaults.maxQueuedReads
    @Option(help: "Milliseconds a read may wait for a thread on a node; one that would wait longer is refused at once.")
    var maxReadWaitMs = defaults.maxReadWaitMs
    @Option(help: "Reads (search, get, count) a coordinator runs at once; more are refused at once.")
    var maxConcurrentReads = defaults.maxConcurrentReads

    var limits: RequestLimits {
        var l = RequestLimits()
        l.maxK = maxK
        l.maxPointsPerRequest = maxPointsPerRequest
        l.maxSearchesPerBatch = maxSearchesPerBatch
        l.maxSearchWork = maxSearchWork
        l.maxMessageBytes = maxMessageBytes
        l.maxInValues = maxInValues
        l.maxFilterDepth = maxFilterDepth
        l.maxFilterConditions = maxFilterConditions
        l.maxMetadataBytes = maxMetadataBytes
        l.maxFieldsPerPoint = maxFieldsPerPoint
        l.maxFieldNameBytes = maxFieldNameBytes
        l.maxStringBytes = maxStringBytes
        l.maxListElements = maxListElements
        l.maxFieldNamesPerCollection = maxFieldNames
        l.readThreads = readThreads
        l.maxQueuedReads = maxQueuedReads
        l.maxReadWaitMs = maxReadWaitMs
        l.maxConcurrentReads = maxConcurrentReads
        l.maxConcurrentCalls = maxConcurrentCalls
        l.maxQueuedWriteOps = maxQueuedWriteOps
        l.maxIndexBacklog = maxIndexBacklog
        return l
    }

    func validate() throws {
        let all: [(String, Int)] = [
            ("--max-k", maxK), ("--max-points-per-request", maxPointsPerRequest), ("--max-searches-per-batch", maxSearchesPerBatch),
            ("--max-search-work", maxSearchWork), ("--max-message-bytes", maxMessageBytes), ("--max-in-values", maxInValues),
            ("--max-filter-depth", maxFilterDepth), ("--max-filter-conditions", maxFilterConditions),
            ("--max-metadata-bytes", maxMetadataBytes), ("--max-fields-per-point", maxFieldsPerPoint),
            ("--max-field-name-bytes", maxFieldNameBytes), ("--max-string-bytes", maxStringBytes),
            ("--max-list-elements", maxListElements), ("--max-field-names", maxFieldNames),
            ("--max-concurrent-calls", maxConcurrentCalls), ("--max-queued-write-ops", maxQueuedWriteOps),
            ("--max-index-backlog", maxIndexBacklog), ("--max-queued-reads", maxQueuedReads),
            ("--max-read-wait-ms", maxReadWaitMs), ("--max-concurrent-reads", maxConcurrentReads),
        ]
        guard readThreads >= 0 else { throw ValidationError("--read-threads must be at least 0, got \(readThreads)") }
        for (flag, value) in all where value < 1 { throw ValidationError("\(flag) must be at least 1, got \(value)") }
        guard maxMessageBytes <= Int(Int32.max) else { throw ValidationError("--max-message-bytes must be at most \(Int32.max)") }
        // A write batch larger than the queue could never be queued.
        guard maxQueuedWriteOps >= maxPointsPerRequest else {
            throw ValidationError("--max-queued-write-ops (\(maxQueuedWriteOps)) must be at least --max-points-per-request (\(maxPointsPerRequest))")
        }
    }
}
