import ShoalProto

/// The internal `shoal.v1.Shard` service (coordinator ↔ node). See Protos/shoal/v1/shard.proto.
public enum ShardRPC {
    public static let health = RPC<Shoal_V1_HealthRequest, Shoal_V1_HealthResponse>("/shoal.v1.Shard/Health")
}

/// The public `shoal.v1.Admin` service. See Protos/shoal/v1/admin.proto.
public enum AdminRPC {
    public static let health = RPC<Shoal_V1_HealthRequest, Shoal_V1_HealthResponse>("/shoal.v1.Admin/Health")
}

extension ShardRPC {
    public static let createReplica = RPC<Shoal_V1_CreateReplicaRequest, Shoal_V1_CreateReplicaResponse>("/shoal.v1.Shard/CreateReplica")
    public static let dropReplica = RPC<Shoal_V1_DropReplicaRequest, Shoal_V1_DropReplicaResponse>("/shoal.v1.Shard/DropReplica")
    public static let writeBatch = RPC<Shoal_V1_WriteBatchRequest, Shoal_V1_WriteBatchResponse>("/shoal.v1.Shard/WriteBatch")
    public static let get = RPC<Shoal_V1_ReplicaGetRequest, Shoal_V1_ReplicaGetResponse>("/shoal.v1.Shard/Get")
    public static let search = RPC<Shoal_V1_ReplicaSearchRequest, Shoal_V1_ReplicaSearchResponse>("/shoal.v1.Shard/Search")
    public static let count = RPC<Shoal_V1_ReplicaCountRequest, Shoal_V1_ReplicaCountResponse>("/shoal.v1.Shard/Count")
    public static let scan = RPC<Shoal_V1_ScanRequest, Shoal_V1_ScanResponse>("/shoal.v1.Shard/Scan")
    public static let fenceReplica = RPC<Shoal_V1_FenceReplicaRequest, Shoal_V1_FenceReplicaResponse>("/shoal.v1.Shard/FenceReplica")
    public static let stats = RPC<Shoal_V1_StatsRequest, Shoal_V1_StatsResponse>("/shoal.v1.Shard/Stats")
    public static let searchShards = RPC<Shoal_V1_NodeSearchRequest, Shoal_V1_NodeSearchResponse>("/shoal.v1.Shard/SearchShards")
    public static let getShards = RPC<Shoal_V1_NodeGetRequest, Shoal_V1_NodeGetResponse>("/shoal.v1.Shard/GetShards")
    public static let countShards = RPC<Shoal_V1_NodeCountRequest, Shoal_V1_NodeCountResponse>("/shoal.v1.Shard/CountShards")
}

/// The public `shoal.v1.VectorStore` service. See Protos/shoal/v1/vector_store.proto.
public enum VectorStoreRPC {
    public static let createCollection = RPC<Shoal_V1_CreateCollectionRequest, Shoal_V1_CreateCollectionResponse>("/shoal.v1.VectorStore/CreateCollection")
    public static let deleteCollection = RPC<Shoal_V1_DeleteCollectionRequest, Shoal_V1_DeleteCollectionResponse>("/shoal.v1.VectorStore/DeleteCollection")
    public static let listCollections = RPC<Shoal_V1_ListCollectionsRequest, Shoal_V1_ListCollectionsResponse>("/shoal.v1.VectorStore/ListCollections")
    public static let describeCollection = RPC<Shoal_V1_DescribeCollectionRequest, Shoal_V1_DescribeCollectionResponse>("/shoal.v1.VectorStore/DescribeCollection")
    public static let upsert = RPC<Shoal_V1_UpsertRequest, Shoal_V1_UpsertResponse>("/shoal.v1.VectorStore/Upsert")
    public static let delete = RPC<Shoal_V1_DeleteRequest, Shoal_V1_DeleteResponse>("/shoal.v1.VectorStore/Delete")
    public static let get = RPC<Shoal_V1_GetRequest, Shoal_V1_GetResponse>("/shoal.v1.VectorStore/Get")
    public static let search = RPC<Shoal_V1_SearchRequest, Shoal_V1_SearchResponse>("/shoal.v1.VectorStore/Search")
    public static let searchBatch = RPC<Shoal_V1_SearchBatchRequest, Shoal_V1_SearchBatchResponse>("/shoal.v1.VectorStore/SearchBatch")
    public static let count = RPC<Shoal_V1_CountRequest, Shoal_V1_CountResponse>("/shoal.v1.VectorStore/Count")
    public static let classify = RPC<Shoal_V1_ClassifyRequest, Shoal_V1_ClassifyResponse>("/shoal.v1.VectorStore/Classify")
    public static let evaluateClassifier = RPC<Shoal_V1_EvaluateClassifierRequest, Shoal_V1_EvaluateClassifierResponse>("/shoal.v1.VectorStore/EvaluateClassifier")
    public static let anomalyScore = RPC<Shoal_V1_AnomalyScoreRequest, Shoal_V1_AnomalyScoreResponse>("/shoal.v1.VectorStore/AnomalyScore")
}

extension AdminRPC {
    public static let listNodes = RPC<Shoal_V1_ListNodesRequest, Shoal_V1_ListNodesResponse>("/shoal.v1.Admin/ListNodes")
    public static let shardMap = RPC<Shoal_V1_ShardMapRequest, Shoal_V1_ShardMapResponse>("/shoal.v1.Admin/ShardMap")
    public static let addNode = RPC<Shoal_V1_AddNodeRequest, Shoal_V1_AddNodeResponse>("/shoal.v1.Admin/AddNode")
    public static let removeNode = RPC<Shoal_V1_RemoveNodeRequest, Shoal_V1_RemoveNodeResponse>("/shoal.v1.Admin/RemoveNode")
    public static let drainNode = RPC<Shoal_V1_DrainNodeRequest, Shoal_V1_DrainNodeResponse>("/shoal.v1.Admin/DrainNode")
    public static let moveShard = RPC<Shoal_V1_MoveShardRequest, Shoal_V1_MoveShardResponse>("/shoal.v1.Admin/MoveShard")
    public static let rebalance = RPC<Shoal_V1_RebalanceRequest, Shoal_V1_RebalanceResponse>("/shoal.v1.Admin/Rebalance")
    public static let taskStatus = RPC<Shoal_V1_TaskStatusRequest, Shoal_V1_TaskStatusResponse>("/shoal.v1.Admin/TaskStatus")
    public static let cancelMove = RPC<Shoal_V1_CancelMoveRequest, Shoal_V1_CancelMoveResponse>("/shoal.v1.Admin/CancelMove")
    public static let listCoordinators = RPC<Shoal_V1_ListCoordinatorsRequest, Shoal_V1_ListCoordinatorsResponse>("/shoal.v1.Admin/ListCoordinators")
    public static let listOrphans = RPC<Shoal_V1_ListOrphansRequest, Shoal_V1_ListOrphansResponse>("/shoal.v1.Admin/ListOrphans")
    public static let adoptOrphans = RPC<Shoal_V1_AdoptOrphansRequest, Shoal_V1_AdoptOrphansResponse>("/shoal.v1.Admin/AdoptOrphans")
    public static let deleteOrphan = RPC<Shoal_V1_DeleteOrphanRequest, Shoal_V1_DeleteOrphanResponse>("/shoal.v1.Admin/DeleteOrphan")
    public static let recover = RPC<Shoal_V1_RecoverRequest, Shoal_V1_RecoverResponse>("/shoal.v1.Admin/Recover")
    public static let verifyCollection = RPC<Shoal_V1_VerifyCollectionRequest, Shoal_V1_VerifyCollectionResponse>("/shoal.v1.Admin/VerifyCollection")
    public static let repairCollection = RPC<Shoal_V1_RepairCollectionRequest, Shoal_V1_RepairCollectionResponse>("/shoal.v1.Admin/RepairCollection")
}
