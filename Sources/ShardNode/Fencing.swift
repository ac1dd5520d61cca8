import Logging
import VectorCore
import VectorStorage

// Two fences keep a node's data safe from coordinators that act on old knowledge.
//
// The leader term fences the leader's commands (create, drop, fence, a move's copy
// pages): a deposed leader that wakes up changes nothing. The placement fence of a
// replica fences data requests (writes, get, search, count) routed by an older copy
// of the cluster state, so that during a shard move no coordinator writes to the
// source replica alone or reads a retired one.
//
// Both are checked and changed between two write groups (the committer's gate), so
// each write group either precedes a change wholly or sees it: once a command that
// raised the term or a fence has answered, no write it refuses is applied afterwards,
// and every write applied before it is committed and visible.

/// Where a write batch comes from, which decides the fence it passes.
enum WriteOrigin: Sendable {
    /// A data write a coordinator routed by the cluster state of `placementEpoch`
    /// (0: not checked): checked against the replica's placement fence.
    case routed(placementEpoch: UInt64)
    /// A shard move's copy page from the leader of `term` (0: not fenced): checked
    /// against the node's highest leader term, never against the placement fence.
    case leaderCopy(term: UInt64)
}

/// The highest leader term this node has seen; guarded by the committer's gate.
/// Persisted under `Keys.highestTerm` in the same synced RocksDB batch as the first
/// effect of the command that raised it (or alone, before its answer, when the
/// command changed nothing else), so a restart never forgets it.
struct LeaderTerm {
    private(set) var highest: UInt64

    init(highest: UInt64) { self.highest = highest }

    /// The term persisted in `db` (0 if none); DATA_LOSS if the record is malformed.
    static func load(from db: Database) throws -> LeaderTerm {
        guard let bytes = try db.get(Keys.highestTerm) else { return LeaderTerm(highest: 0) }
        guard bytes.count == 8 else {
            throw ShoalError(.dataLoss, "the node's highest leader term record has \(bytes.count) bytes, not 8")
        }
        return LeaderTerm(highest: bytes.readBigEndian(at: 0))
    }

    /// Refuses (FAILED_PRECONDITION) a nonzero `term` older than the highest; returns
    /// whether `term` raises it. Term 0 is not fenced.
    func admit(_ term: UInt64) throws(ShoalError) -> Bool {
        guard term == 0 || term >= highest else {
            throw ShoalError(.failedPrecondition,
                "leader term \(term) is older than term \(highest) this node has seen: a newer coordinator leads; this request changes nothing")
        }
        return term > highest
    }

    /// Records `term` (the caller has persisted it or staged it into the batch it writes).
    mutating func raise(to term: UInt64) { highest = max(highest, term) }

    static func stage(_ term: UInt64, into batch: WriteBatch) {
        var value = [UInt8]()
        value.appendBigEndian(term)
        batch.put(Keys.highestTerm, value)
    }
}

/// The term of one leader command run by `Committer.leaderCommand`. A command that
/// changes storage stages the raised term into its own batch (`stage(into:)`), so
/// both land together; otherwise the term is written alone after the command.
final class TermStamp {
    let term: UInt64
    /// `term` is higher than the node's highest.
    let raises: Bool
    private(set) var staged = false

    init(term: UInt64, raises: Bool) {
        self.term = term
        self.raises = raises
    }

    /// Adds the raised term to `batch` (nothing when the term raises nothing).
    func stage(into batch: WriteBatch) {
        guard raises else { return }
        LeaderTerm.stage(term, into: batch)
        staged = true
    }
}

/// A replica's placement fence: data requests routed by a placement epoch below
/// `minEpoch`, or any that carries an epoch once `retired`, are refused with ABORTED.
/// It only tightens. Persisted under `Keys.fence(number)` with the replica's keys (a
/// drop deletes it with them).
struct PlacementFence: Equatable, Sendable {
    var minEpoch: UInt64 = 0
    var retired = false

    /// Refuses (ABORTED) a request routed by `epoch` that this fence excludes; epoch 0
    /// is not checked.
    func check(_ epoch: UInt64, replica: ReplicaRef) throws(ShoalError) {
        guard epoch > 0 else { return }
        if retired {
            throw ShoalError(.aborted,
                "replica \(replica) was retired (fenced at placement epoch \(minEpoch)); this request was routed by epoch \(epoch): refresh the placement and retry (nothing was changed)")
        }
        if epoch < minEpoch {
            throw ShoalError(.aborted,
                "replica \(replica) was fenced at placement epoch \(minEpoch); this request was routed by epoch \(epoch): refresh the placement and retry (nothing was changed)")
        }
    }

    /// This fence tightened by a FenceReplica request: `minEpoch` never lowers, a
    /// retirement is never undone.
    func tightened(minEpoch: UInt64, retire: Bool) -> PlacementFence {
        PlacementFence(minEpoch: max(self.minEpoch, minEpoch), retired: retired || retire)
    }

    /// `u64 min_epoch`, then one byte: 1 if retired.
    var encoded: [UInt8] {
        var out = [UInt8]()
        out.appendBigEndian(minEpoch)
        out.append(retired ? 1 : 0)
        return out
    }

    init(minEpoch: UInt64 = 0, retired: Bool = false) {
        self.minEpoch = minEpoch
        self.retired = retired
    }

    init(decoding bytes: [UInt8]) throws(ShoalError) {
        guard bytes.count == 9, bytes[8] <= 1 else {
            throw ShoalError(.dataLoss, "placement fence record of \(bytes.count) bytes is malformed")
        }
        self.init(minEpoch: bytes.readBigEndian(at: 0), retired: bytes[8] == 1)
    }
}

extension ShardStore {
    /// Tightens the placement fence of `ref` (of incarnation `number`, when given) and
    /// returns it, between two write groups (see the ordering at the top of this file):
    /// when it returns, no write routed below the fence is applied afterwards, and every
    /// write applied before it is committed. Persisted (synced) before it returns. A
    /// fence that would not tighten changes nothing and is answered as it stands.
    /// NOT_FOUND: no such replica or another incarnation; FAILED_PRECONDITION: set
    /// aside, or an older leader `term`.
    func fenceReplica(_ ref: ReplicaRef, number: UInt32?, minEpoch: UInt64, retire: Bool, term: UInt64) throws -> PlacementFence {
        try committer.leaderCommand(term: term) { stamp in
            let replica = try replica(ref)
            if let number, replica.number != number {
                throw ShoalError(.notFound, "replica \(ref) incarnation \(number) does not exist on this node (it holds incarnation \(replica.number)); nothing was fenced")
            }
            let fence = replica.placementFence.tightened(minEpoch: minEpoch, retire: retire)
            guard fence != replica.placementFence else { return fence }
            let batch = WriteBatch()
            batch.put(Keys.fence(replica.number), fence.encoded)
            stamp.stage(into: batch)
            try db.write(batch, sync: true)
            replica.lock.write { replica.placementFence = fence }
            logger.info("replica fenced", metadata: [
                "replica": "\(ref)", "number": "\(replica.number)", "min_epoch": "\(fence.minEpoch)", "retired": "\(fence.retired)"])
            return fence
        }
    }

    /// Raises the highest leader term to `term` (a new leader announcing itself,
    /// persisted); an older one changes nothing.
    public func announce(term: UInt64) throws {
        guard term > highestTerm else { return }
        do { try committer.leaderCommand(term: term) { _ in } } catch let error as ShoalError where error.code == .failedPrecondition {}
    }

    /// The highest leader term this node has seen (0: none).
    public var highestTerm: UInt64 { committer.highestTerm }
}
