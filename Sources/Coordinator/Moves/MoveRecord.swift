/// One shard-replica move as the cluster state remembers it: what moves, and
/// how far the move protocol got. Persisted with every phase change, so a
/// restarted coordinator resumes from `phase` (see `MoveExecution`).
public struct MoveRecord: Sendable, Hashable, Codable {
    /// `move-N`, N from `ClusterState.nextMoveNumber`.
    public var id: String
    public var collection: String
    public var shard: UInt32
    public var from: String
    public var to: String
    /// The shard's live points when the move was planned.
    public var points: UInt64
    public var state: MoveState
    /// The current phase (once finished: the last one reached).
    public var phase: MovePhase
    public var createdMs: Int64
    public var updatedMs: Int64
    /// Why the move FAILED or was ROLLED_BACK; empty otherwise.
    public var error: String
    /// Records copied by the last finished copy pass, and that pass's total.
    public var recordsCopied: UInt64
    public var recordsTotal: UInt64
    /// The incarnations of the target replica this move created and of the source
    /// replica it moves (known from COPY_RECORDS on): the move's drops name them, so
    /// a late drop never hits a later replica of the shard on that node.
    public var targetIncarnation: UInt32?
    public var sourceIncarnation: UInt32?
    /// When the operator asked to cancel a running move; it then rolls back (it
    /// cannot switch reads any more), also after a coordinator restart.
    public var cancelRequestedMs: Int64?
    /// Acknowledged writes the copying target missed, recorded by whichever
    /// coordinator sent them before it acknowledged them (nil: none).
    public var missedWrites: UInt64?

    /// Ended by `shoal admin recover` (the metadata it was recorded in was older than
    /// the nodes): its record decides nothing about the replicas it names.
    public var endedByRecover: Bool?

    /// The state epoch at which the move finished (nil while active): orders finished
    /// moves for pruning without trusting any wall clock.
    public var finishedEpoch: UInt64?

    /// What this task does (nil: `.move`, as recorded before kinds existed).
    public var kind: MoveKind?
    /// A catch-up copies only the source's records of at least this version (nil: all).
    public var minVersion: UInt64?
    /// The node whose replica a `.replicate` task replaces (lost: down for longer than
    /// the replica-loss timeout); it leaves the placement when the new replica is in sync.
    public var replaces: String?
    /// The task that makes this one's change after it failed for a reason that does not
    /// end it (its source left the in-sync set): a replicate from an in-sync replica to
    /// the same target, replacing the same source. Nil: none.
    public var retriedAs: String?

    /// `kind`, `.move` for none.
    public var taskKind: MoveKind { kind ?? .move }

    /// `missedWrites`, 0 for none.
    public var misses: UInt64 { missedWrites ?? 0 }

    public init(id: String, collection: String, shard: UInt32, from: String, to: String, points: UInt64, nowMs: Int64) {
        self.id = id
        self.collection = collection
        self.shard = shard
        self.from = from
        self.to = to
        self.points = points
        state = .pending
        phase = .createReplica
        createdMs = nowMs
        updatedMs = nowMs
        error = ""
        recordsCopied = 0
        recordsTotal = 0
    }

    /// Pending or running.
    public var isActive: Bool { state == .pending || state == .running }

    /// Whether this move ended without its target and had created the replica
    /// `incarnation` on `node` as that target (a catch-up's target is the stale
    /// replica it found: it stays). Not for a move ended by `shoal admin recover`: its
    /// record decides nothing.
    func abandoned(_ incarnation: UInt32, on node: String) -> Bool {
        (state == .failed || state == .rolledBack) && taskKind != .catchUp && to == node && targetIncarnation == incarnation
            && endedByRecover != true
    }

    /// The number in `move-N` (orders moves by creation).
    public var number: Int { Int(id.split(separator: "-").last ?? "") ?? 0 }
}

/// What a shard task does. All three run the same protocol (`MoveExecution`): a
/// target that receives live writes while it copies from an in-sync source, then
/// joins the readers.
public enum MoveKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The operator's move or a rebalance's: at the end the source replica is dropped.
    case move
    /// A stale replica (the target, already placed) fetches what it missed from an
    /// in-sync one (the source), or is rebuilt; both stay.
    case catchUp = "catch_up"
    /// A new replica on the target restores the replication factor; the source stays,
    /// and the lost replica it replaces (if any) leaves the placement.
    case replicate
}

/// A move's lifecycle (the twin of `shoal.v1.TaskState`).
public enum MoveState: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, running, done, failed
    case rolledBack = "rolled_back"
}

/// The steps of the move protocol, in order (the twin of `shoal.v1.MovePhase`).
public enum MovePhase: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Creating the empty replica on the target; it is not in the placement yet.
    case createReplica = "create_replica"
    /// The target is a CATCHING_UP replica: writes go to both, and a failed write
    /// to the target is tolerated (counted; the copy is redone). The source's
    /// snapshot streams into the target.
    case copyRecords = "copy_records"
    /// Writes must reach the target too (a failure fails the request). A last copy
    /// pass runs if the target missed writes; then the target's graph catches up.
    case catchUp = "catch_up"
    /// The target is READY and serves reads; the source is RETIRING (no reads, no writes).
    /// From here on the move only goes forward.
    case switchReads = "switch_reads"
    /// Dropping the source replica.
    case dropSource = "drop_source"

    public static func < (a: MovePhase, b: MovePhase) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
