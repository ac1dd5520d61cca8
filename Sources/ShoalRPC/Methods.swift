import ShoalProto

/// The internal `shoal.v1.Shard` service (coordinator ↔ node). See Protos/shoal/v1/shard.proto.
public enum ShardRPC {
    public static let health = RPC<Shoal_V1_HealthRequest, Shoal_V1_HealthResponse>("/shoal.v1.Shard/Health")
}

/// The public `shoal.v1.Admin` service. See Protos/shoal/v1/admin.proto.
public enum AdminRPC {
    public static let health = RPC<Shoal_V1_HealthRequest, Shoal_V1_HealthResponse>("/shoal.v1.Admin/Health")
}
