/// Who may change the cluster, as this coordinator knows it now.
///
/// Exactly one coordinator leads (elected through an etcd lease by
/// `CoordinatorSession`): it runs moves, rebalancing and the janitor, and its
/// commands carry its `term`, which only grows from one leader to the next, so
/// etcd and the nodes refuse a deposed leader. The embedded `shoal serve` is
/// its own leader for good, with term 0 (which nodes do not fence).
public protocol Leadership: Sendable {
    /// This process's term while it leads; nil while it does not (or cannot
    /// be sure it still does: its lease may have run out).
    var currentTerm: Int64? { get }
    /// The address of the coordinator that leads, when another one does.
    var leaderAddress: String? { get }
    /// Why this coordinator cannot take writes now (its session with the
    /// metadata store is gone), or nil when it can.
    var writeRefusal: String? { get }
}

/// A single coordinator process with a local state file: always the leader, term 0.
public struct SoloLeadership: Leadership {
    public init() {}
    public var currentTerm: Int64? { 0 }
    public var leaderAddress: String? { nil }
    public var writeRefusal: String? { nil }
}
