import ShoalProto
import ShoalRPC
import VectorCore

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

/// Decodes and validates a whole write batch against `limits`; any bad op rejects the batch.
func decodeOps(_ request: Shoal_V1_WriteBatchRequest, config: ReplicaConfig, limits: RequestLimits) throws(ShoalError) -> [WriteOp] {
    try limits.checkCount(request.ops.count, "a write batch holds")
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
            do throws(ShoalError) { metadata = try decodeMetadata(point.metadata, limits: limits) } catch {
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
