import ShoalProto
import ShoalRPC
import VectorCore

/// Limits of the Shard service; each breach is a clear status and changes nothing.
public enum ShardLimits {
    public static let maxOpsPerBatch = 10_000
    public static let maxIDBytes = PointValidation.maxIDBytes
    public static let maxK = 10_000
    public static let maxEf = 100_000
    public static let maxPageSize = 10_000
    public static let maxGetIDs = 10_000
}

func replicaRef(_ proto: Shoal_V1_ReplicaRef) throws(ShoalError) -> ReplicaRef {
    guard !proto.collection.isEmpty else { throw ShoalError(.invalidArgument, "replica.collection is empty") }
    return ReplicaRef(collection: proto.collection, shard: proto.shardID)
}

func validateID(_ id: String, at place: @autoclosure () -> String) throws(ShoalError) {
    try PointValidation.validateID(id, at: place())
}

func validateVector(_ vector: [Float], config: ReplicaConfig, at place: @autoclosure () -> String) throws(ShoalError) -> [Float] {
    try PointValidation.validateVector(vector, dimension: config.dimension, metric: config.metric, at: place())
}

/// Decodes and validates a whole write batch; any bad op rejects the batch.
func decodeOps(_ request: Shoal_V1_WriteBatchRequest, config: ReplicaConfig) throws(ShoalError) -> [WriteOp] {
    guard request.ops.count <= ShardLimits.maxOpsPerBatch else {
        throw ShoalError(.resourceExhausted, "a write batch holds at most \(ShardLimits.maxOpsPerBatch) ops, got \(request.ops.count)")
    }
    var ops: [WriteOp] = []
    ops.reserveCapacity(request.ops.count)
    for (i, op) in request.ops.enumerated() {
        let place = "ops[\(i)]"
        guard op.version > 0 else { throw ShoalError(.invalidArgument, "\(place): version must be > 0") }
        switch op.op {
        case .upsert(let point):
            try validateID(point.id, at: place)
            let vector = try validateVector(point.vector, config: config, at: "\(place) (id \"\(point.id)\")")
            let metadata: Metadata
            do throws(ShoalError) { metadata = try decodeMetadata(point.metadata) } catch {
                throw ShoalError(error.code, "\(place) (id \"\(point.id)\"): \(error.message)")
            }
            ops.append(.upsert(id: point.id, vector: vector, metadata: metadata, version: op.version))
        case .deleteID(let id):
            try validateID(id, at: place)
            ops.append(.delete(id: id, version: op.version))
        case nil:
            throw ShoalError(.invalidArgument, "\(place): neither upsert nor delete_id is set")
        }
    }
    return ops
}
