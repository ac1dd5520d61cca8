import Foundation
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// How moves run.
public struct MoveOptions: Sendable {
    /// Points copied per second per move; 0: as fast as the nodes go.
    public var rateLimit: Int
    /// How long a step keeps retrying a failing node before the move rolls back.
    public var retryFor: Duration
    /// Records per Scan page and WriteBatch.
    public var pageSize: UInt32
    /// How long catch-up waits for the target's graph before switching reads anyway
    /// (reads are still exact over the unindexed tail, only slower).
    public var indexWait: Duration
    /// How long a node may be down before its replicas count as lost and are re-created
    /// on other nodes (`ReplicaHealer`).
    public var replicaLossTimeout: Duration

    public init(
        rateLimit: Int = 0, retryFor: Duration = .seconds(60), pageSize: UInt32 = 1000, indexWait: Duration = .seconds(300),
        replicaLossTimeout: Duration = .seconds(60)
    ) {
        self.rateLimit = rateLimit
        self.retryFor = retryFor
        self.pageSize = pageSize
        self.indexWait = indexWait
        self.replicaLossTimeout = replicaLossTimeout
    }
}

/// Why a move stops before it is done.
enum MoveStop: Error {
    case cancelled
    case failed(String)
}

/// Carries out one move (see `MovePhase` for the protocol), from whatever phase the
/// cluster state records, so a restarted coordinator resumes where it was:
///
/// 1. CREATE_REPLICA: a clean, empty replica on the target; then the target joins
///    the placement as CATCHING_UP and writes go to both. The step waits until no
///    request routed by the old placement is in flight, so every write acknowledged
///    from then on is on the target, or counted as missed.
/// 2. COPY_RECORDS: pages of one consistent snapshot of the source (vectors,
///    metadata, tombstones, versions) are written to the target. Versions settle the
///    races with live writes: the target keeps the newer of the two.
/// 3. CATCH_UP: writes must now reach the target too. Once the old placement's
///    requests are gone, any write the target missed during the copy was
///    acknowledged before this point, so a fresh copy pass (only if there were
///    misses, or the coordinator restarted mid-copy) brings them. Then the target's
///    graph catches up.
/// 4. SWITCH_READS: target READY, source RETIRING. No going back after this.
/// 5. DROP_SOURCE: once the old placement's requests are done, the source replica
///    is dropped and leaves the placement: DONE.
///
/// A failing node is retried (each copy attempt from a fresh snapshot) for
/// `MoveOptions.retryFor`; then, or on a cancel, a move before step 4 rolls back:
/// the target leaves the placement and its replica is dropped (FAILED or ROLLED_BACK).
struct MoveExecution: Sendable {
    let id: String
    let cluster: ClusterController
    let progress: MoveProgress
    let options: MoveOptions
    let logger: Logger

    func run() async {
        guard let collection = cluster.snapshot.moves[id]?.collection else { return }
        await cluster.executingMove(of: collection) { await execute() }
    }

    private func execute() async {
        do {
            try await proceed()
        } catch {
            if Task.isCancelled || cluster.leadership.currentTerm == nil {
                // This coordinator stopped leading: the move stays where it is
                // recorded, and the next leader resumes it from there.
                logger.warning("move paused: this coordinator no longer leads", metadata: ["move": "\(id)", "error": "\(error)"])
                return
            }
            if cluster.snapshot.moves[id]?.cancelRequestedMs != nil {
                await rollBack(as: .rolledBack, reason: "cancelled by the operator")
            } else if case MoveStop.failed(let why) = error {
                await rollBack(as: .failed, reason: why)
            } else {
                await rollBack(as: .failed, reason: "\(error)")
            }
        }
    }

    /// Runs the phases from the one on record, in order; each returns the move as
    /// recorded after it, in the phase that follows (phases only go forward).
    private func proceed() async throws {
        var move = try record()
        // A coordinator that restarts in CATCH_UP does not know which writes the
        // target missed before; it copies once more.
        let resumedInCatchUp = move.phase == .catchUp
        logger.info("move running", metadata: meta(move, ["phase": "\(move.phase.rawValue)"]))
        // Misses counted from the start of the latest copy pass: writes its snapshot may lack.
        var missedBefore: UInt64 = 0
        if move.phase == .createReplica {
            move = try await createReplica(move)
        }
        if move.phase == .copyRecords {
            (move, missedBefore) = try await copyRecords(move)
        }
        if move.phase == .catchUp {
            move = try await catchUp(move, missedBefore: missedBefore, copyAgain: resumedInCatchUp)
        }
        try await finish(move)
    }

    /// CREATE_REPLICA → COPY_RECORDS: learns the source replica's incarnation, readies
    /// the target (a catch-up's stale replica, else a new empty one), and has it join
    /// the placement so writes go to both. A new replica that fails to join is dropped
    /// again: nothing else would.
    private func createReplica(_ move: MoveRecord) async throws -> MoveRecord {
        let source = try await retrying("find the replica on node \(move.from)") {
            let stats = try await endpoint(move.from).call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10))
            guard let replica = stats.replicas.first else { throw ShoalError(.notFound, "node \(move.from) holds no replica \(ref(move))") }
            return replica.incarnation
        }
        if move.taskKind == .catchUp {
            let (target, minVersion) = try await retrying("prepare the stale replica on node \(move.to)") { try await prepareCatchUp(move) }
            return try await step { s throws(ShoalError) in
                try s.beginDualWrite(id, targetIncarnation: target, sourceIncarnation: source, minVersion: minVersion, nowMs: nowMs())
            }
        }
        let target = try await retrying("create the replica on node \(move.to)") { try await createEmptyReplica(move) }
        do {
            return try await step { s throws(ShoalError) in
                try s.beginDualWrite(id, targetIncarnation: target, sourceIncarnation: source, nowMs: nowMs())
            }
        } catch {
            // The replica never joined the placement: nothing else will drop it.
            _ = try? await endpoint(move.to).call(ShardRPC.dropReplica, .with {
                $0.replica = ref(move)
                $0.term = try leaderTerm()
                $0.incarnation = target
            }, timeout: .seconds(10))
            throw error
        }
    }

    /// COPY_RECORDS → CATCH_UP: fences the source, copies one snapshot of it to the
    /// target, and waits for the target's graph. Returns the move and the target's
    /// missed writes as recorded when the pass began.
    private func copyRecords(_ move: MoveRecord) async throws -> (MoveRecord, missedBefore: UInt64) {
        // Before the snapshot: no coordinator whose state predates the target's
        // joining can write to the source alone any more (its write is refused
        // and retried by the new placement), and every write applied before is
        // committed, so the snapshot holds it.
        try await fence(move.from, move, incarnation: move.sourceIncarnation, retire: false)
        let pass = try await copy(move)
        // The graph catches up while a failed write to the target is still
        // tolerated: a target that dies now costs no client request.
        try await waitForGraph(move)
        let next = try await step { s throws(ShoalError) in try s.setMovePhase(id, .catchUp, copied: pass.copied, total: pass.total, nowMs: nowMs()) }
        return (next, pass.missedBefore)
    }

    /// CATCH_UP → SWITCH_READS: copies again while the target missed writes since the
    /// last pass began (`missedBefore`), or once first with `copyAgain`, then switches
    /// reads to the target. Stops (the move rolls back) after `maxRefusedSwitches`
    /// refused switches in a row.
    private func catchUp(_ move: MoveRecord, missedBefore: UInt64, copyAgain: Bool) async throws -> MoveRecord {
        // Writes the target missed were recorded before they were acknowledged, and
        // each pass starts from a snapshot taken after the count it began with: reads
        // switch only if no miss was recorded since (else the switch is refused and
        // the target copies again).
        var move = move
        var missedBefore = missedBefore
        var needsPass = copyAgain || move.misses != missedBefore
        var refused = 0
        while true {
            if needsPass {
                logger.info("move copies again: the target missed writes", metadata: meta(move, [:]))
                let pass = try await copy(move)
                missedBefore = pass.missedBefore
                move = try await step { s throws(ShoalError) in try s.setMovePhase(id, .catchUp, copied: pass.copied, total: pass.total, nowMs: nowMs()) }
                try await waitForGraph(move)
            }
            try checkCancel()
            do {
                let expected = missedBefore
                return try await step { s throws(ShoalError) in try s.switchReads(id, expectedMisses: expected, nowMs: nowMs()) }
            } catch let error as ShoalError where error.code == .aborted {
                // A target that misses writes during every pass never catches up: the
                // task stops (rolls back) rather than copy forever, and is tried again later.
                refused += 1
                if refused >= Self.maxRefusedSwitches {
                    throw MoveStop.failed("the target missed writes during \(refused) copy passes in a row")
                }
                needsPass = true
            }
        }
    }

    /// SWITCH_READS / DROP_SOURCE → DONE: a move drops its source; a replicate drops
    /// the replica it replaces if that node answers (else the replica janitor does,
    /// once it is back); then the move is complete.
    private func finish(_ move: MoveRecord) async throws {
        var move = move
        if move.taskKind == .move {
            try await dropSource(&move)
        } else if move.taskKind == .replicate, let lost = move.replaces {
            // The replaced replica left the placement at the switch (a decision on record).
            _ = try? await endpoint(lost).call(ShardRPC.dropReplica, .with {
                $0.replica = ref(move)
                $0.term = try leaderTerm()
            }, timeout: .seconds(5))
        }
        move = try await step { s throws(ShoalError) in try s.completeMove(id, nowMs: nowMs()) }
        logger.info("move done", metadata: meta(move, ["seconds": "\(Double(move.updatedMs - move.createdMs) / 1000)"]))
    }

    /// A move's end once reads are on the target: from here it only goes forward. The
    /// source is retired (a coordinator that still routes by an older state gets ABORTED
    /// from it and reads the new placement), leaves the reads, and is dropped.
    private func dropSource(_ move: inout MoveRecord) async throws {
        if move.phase >= .switchReads {
            try await fence(move.from, move, incarnation: move.sourceIncarnation, retire: true)
        }
        if move.phase == .switchReads {
            move = try await step { s throws(ShoalError) in try s.setMovePhase(id, .dropSource, nowMs: nowMs()) }
        }
        let source = move
        do {
            try await retrying("drop the replica on node \(source.from)", stopWhen: .ended) {
                _ = try await endpoint(source.from).call(ShardRPC.dropReplica, .with {
                    $0.replica = ref(source)
                    $0.term = try leaderTerm()
                    if let incarnation = source.sourceIncarnation { $0.incarnation = incarnation }
                }, timeout: .seconds(30))
            }
        } catch {
            logger.error("move done, but the source replica could not be dropped; the replica janitor drops it once the node answers",
                         metadata: meta(move, ["error": "\(error)"]))
        }
    }

    /// Readies a catch-up's stale target: returns its incarnation and the lowest version
    /// to copy. A write it lacks has a version above its newest one less
    /// `catchUpMargin` (the versions of writes in flight together differ by less:
    /// request time and the coordinators' shared version ceiling bound them). First it
    /// is fenced at the current epoch, so no write routed while it was in sync lands
    /// after its newest version is read. Rebuilt from scratch instead (an empty replica
    /// of a new incarnation, everything copied) when it was stale longer than the
    /// source keeps tombstones (less the margin), or holds no replica any more.
    private func prepareCatchUp(_ move: MoveRecord) async throws -> (UInt32, UInt64?) {
        let target = try endpoint(move.to)
        let sourceStats = try await endpoint(move.from).call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10))
        let held = try await target.call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10)).replicas.first
        let placed = cluster.snapshot.placedReplica(collection: move.collection, shard: move.shard, on: move.to)
        let awayMs = Self.awayMs(placed)
        let keptMs = Self.tombstonesKeptMs(sourceStats.tombstoneRetentionMs)
        if let held, sourceStats.tombstoneRetentionMs == 0 || awayMs < keptMs {
            let fenced = cluster.snapshot.epoch
            _ = try await target.call(ShardRPC.fenceReplica, .with {
                $0.replica = ref(move)
                $0.incarnation = held.incarnation
                $0.minEpoch = fenced
                $0.term = try leaderTerm()
            }, timeout: .seconds(10))
            let newest = try await target.call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10)).replicas.first?.maxVersion ?? 0
            let margin = UInt64(Self.catchUpMargin.milliseconds) << UInt64(HLCVersion.logicalBits)
            let floor = min(newest > margin ? newest - margin : 0, placed?.catchUpFloor ?? .max)
            logger.info("catch-up fetches what the replica missed", metadata: meta(move, [
                "newest_version": "\(newest)", "from_version": "\(floor)", "away_ms": "\(awayMs)"]))
            return (held.incarnation, floor)
        }
        logger.warning("catch-up rebuilds the replica from scratch", metadata: meta(move, [
            "away_ms": "\(awayMs)", "tombstone_retention_ms": "\(sourceStats.tombstoneRetentionMs)", "held": "\(held != nil)"]))
        if let held {
            _ = try await target.call(ShardRPC.dropReplica, .with {
                $0.replica = ref(move)
                $0.term = try leaderTerm()
                $0.incarnation = held.incarnation
            }, timeout: .seconds(30))
        }
        return (try await createEmptyReplica(move), nil)
    }

    /// Copy passes a task makes in CATCH_UP before it gives up (see the catch-up loop).
    static let maxRefusedSwitches = 5

    /// Stops a catch-up that copies only newer records once its target has been stale
    /// longer than the source keeps tombstones (less `catchUpMargin` and 30 s for the
    /// coordinators' wall clocks): a delete it missed may have left no trace. Checked
    /// before every pass's snapshot; the next catch-up rebuilds the replica instead.
    private func checkTombstonesKept(_ move: MoveRecord) async throws {
        guard move.taskKind == .catchUp, move.minVersion != nil else { return }  // nil: a rebuild, into an empty replica
        let retention = try await endpoint(move.from).call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10)).tombstoneRetentionMs
        let awayMs = Self.awayMs(cluster.snapshot.placedReplica(collection: move.collection, shard: move.shard, on: move.to))
        if retention > 0, awayMs >= Self.tombstonesKeptMs(retention) {
            throw MoveStop.failed("node \(move.to) has been away \(awayMs / 1000) s, longer than node \(move.from) keeps tombstones; the replica is rebuilt")
        }
    }

    /// How long the catch-up's target has been stale (its `staleSinceMs`, by the wall clock).
    private static func awayMs(_ target: Replica?) -> Int64 { nowMs() - (target?.staleSinceMs ?? 0) }

    /// How long after a replica went stale its catch-up can still rely on the source's tombstones.
    static func tombstonesKeptMs(_ retentionMs: UInt64) -> Int64 {
        Int64(retentionMs) - catchUpMargin.milliseconds - 30_000
    }

    /// How far below a stale replica's newest version a catch-up starts copying: the
    /// longest a request may take, plus the spread of the coordinators' clocks under
    /// their shared version ceiling, with room to spare.
    static let catchUpMargin: Duration = VectorStoreService.maxRequestTime + .seconds(10)

    /// An empty replica of the shard on the target, of a new incarnation; an empty one
    /// left there by an earlier attempt is dropped first (by its incarnation).
    private func createEmptyReplica(_ move: MoveRecord) async throws -> UInt32 {
        let target = try endpoint(move.to)
        let config = try collectionConfig(move).proto
        let request = try Shoal_V1_CreateReplicaRequest.with {
            $0.config = config
            $0.shardID = move.shard
            $0.term = try leaderTerm()
        }
        var reply = try await target.call(ShardRPC.createReplica, request, timeout: .seconds(30))
        if !reply.created {
            // Left by an earlier attempt of this move only if it is empty: before the
            // target joins the placement it receives no writes. Anything else is data the
            // metadata does not place (an orphan): the move stops rather than drop it.
            // Or one an ended move created there and left behind (a move that failed and
            // is retried as this replicate): the metadata decided to drop it.
            let held = try await target.call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10)).replicas.first
            let state = cluster.snapshot
            let leftEmpty = held.map { $0.points == 0 && $0.tombstones == 0 && $0.maxVersion == 0 } ?? false
            let abandoned = held.map { held in
                state.moves.values.contains { $0.collection == move.collection && $0.shard == move.shard && $0.abandoned(held.incarnation, on: move.to) }
            } ?? false
            guard let held, held.incarnation == reply.incarnation, leftEmpty || abandoned,
                  !state.isPlaced(collection: move.collection, shard: move.shard, on: move.to) else {
                throw MoveStop.failed("node \(move.to) already holds a replica of shard \(move.shard) of \(move.collection) with data the metadata does not place (incarnation \(reply.incarnation)); see shoal admin orphans")
            }
            _ = try await target.call(ShardRPC.dropReplica, .with {
                $0.replica = ref(move)
                $0.term = try leaderTerm()
                $0.incarnation = reply.incarnation
            }, timeout: .seconds(30))
            reply = try await target.call(ShardRPC.createReplica, request, timeout: .seconds(30))
            guard reply.created else { throw ShoalError(.unavailable, "node \(move.to) kept an old replica \(ref(move))") }
        }
        return reply.incarnation
    }

    /// Commits one state change of this move, then waits until no request routed by
    /// an older placement is in flight. Returns the move as recorded.
    private func step(_ change: (inout ClusterState) throws(ShoalError) -> Void) async throws -> MoveRecord {
        let state = try await cluster.commit(change)
        let committed = ContinuousClock.now
        await cluster.waitForRequests(before: state.epoch)
        guard let move = state.moves[id] else { throw MoveStop.failed("move \(id) vanished from the cluster state") }
        logger.info("move step", metadata: meta(move, [
            "phase": "\(move.phase.rawValue)", "state": "\(move.state.rawValue)",
            "drained_ms": "\((ContinuousClock.now - committed).milliseconds)"]))
        return move
    }

    // MARK: copy

    /// One copy pass over a fresh snapshot of the source, retried from the start on
    /// failure. `missedBefore`: the target's missed writes as recorded when the pass began
    /// (the local copy may lag the metadata: then the count differs later and the move copies once more).
    private func copy(_ move: MoveRecord) async throws -> (copied: UInt64, total: UInt64, missedBefore: UInt64) {
        try await retrying("copy shard \(move.shard) from node \(move.from) to node \(move.to)", progress: { progress.furthestCopied(id) }) {
            let missedBefore = cluster.snapshot.moves[id]?.misses ?? 0
            let (copied, total) = try await copyPass(move)
            return (copied, total, missedBefore)
        }
    }

    private func copyPass(_ move: MoveRecord) async throws -> (UInt64, UInt64) {
        try await checkTombstonesKept(cluster.snapshot.moves[id] ?? move)
        let source = try endpoint(move.from)
        let target = try endpoint(move.to)
        let size = try pageSize(move)
        let started = ContinuousClock.now
        var token = Data()
        var snapshot: UInt64 = 0
        var copied: UInt64 = 0
        var total: UInt64 = 0
        progress.report(id, copied: 0, total: move.points)
        while true {
            try checkCancel()
            let page = try await source.call(ShardRPC.scan, .with {
                $0.replica = ref(move)
                $0.pageToken = token
                $0.pageSize = size
                $0.snapshotID = snapshot
                $0.includeVector = true
                $0.includeMetadata = true
                $0.includeTombstones = true
                $0.minVersion = move.minVersion ?? 0
            }, timeout: .seconds(60))
            snapshot = page.snapshotID
            total = max(page.totalEstimate, copied + UInt64(page.points.count))
            if !page.points.isEmpty {
                let write = try Shoal_V1_WriteBatchRequest.with {
                    $0.replica = ref(move)
                    $0.copy = true
                    $0.term = try leaderTerm()
                    $0.ops = page.points.map { record in
                        .with {
                            $0.version = record.version
                            if record.tombstone { $0.deleteID = record.point.id } else { $0.upsert = record.point }
                        }
                    }
                }
                try await writeWhenTaken(write, to: target)
            }
            copied += UInt64(page.points.count)
            progress.report(id, copied: copied, total: page.done ? copied : total)
            if page.done { return (copied, copied) }
            token = page.nextPageToken
            if options.rateLimit > 0 {
                let due = started + .milliseconds(Int(copied * 1000 / UInt64(options.rateLimit)))
                if due > ContinuousClock.now { try await pause(until: due) }
            }
        }
    }

    /// Writes one copied page to the target. A target too busy to take it (RESOURCE_EXHAUSTED:
    /// its write queue or indexing backlog is full) is asked again every 0.5 s for up to
    /// `busyWait`, within the source snapshot's idle timeout; the pass then fails and is
    /// retried like any other failure. Each answer of "busy" is back-pressure, not a fault.
    private func writeWhenTaken(_ request: Shoal_V1_WriteBatchRequest, to target: any UnaryTransport) async throws {
        let giveUp = ContinuousClock.now + Self.busyWait
        while true {
            do {
                _ = try await target.call(ShardRPC.writeBatch, request, timeout: .seconds(60))
                return
            } catch let error as ShoalError where error.code == .resourceExhausted && ContinuousClock.now < giveUp {
                try await pause(until: ContinuousClock.now + .milliseconds(500))
            }
        }
    }

    /// How long a copy pass waits for a busy target (below the source's 60 s snapshot idle timeout).
    static let busyWait: Duration = .seconds(45)

    /// Records per page: `options.pageSize`, fewer where vectors are large (a page
    /// stays near `pageBytes`, far below the message limit), and at most 10 s of
    /// copying at the rate limit (the source forgets a snapshot idle for 60 s).
    private func pageSize(_ move: MoveRecord) throws -> UInt32 {
        let bytesPerPoint = Int(try collectionConfig(move).dimension) * 4 + 512
        var size = min(Int(options.pageSize), max(1, Self.pageBytes / bytesPerPoint))
        if options.rateLimit > 0 { size = min(size, max(1, options.rateLimit * 10)) }
        return UInt32(size)
    }

    static let pageBytes = 4 << 20

    /// Waits until the target's graph holds nearly every point (at most two pages
    /// unindexed, which reads scan exactly; under steady writes the lag never reaches
    /// zero), at most `options.indexWait`. Not for a catch-up: its target's graph holds
    /// what it held before it went stale, and the sooner it is in sync again the sooner
    /// the shard survives another failure (what it still indexes, reads scan exactly).
    private func waitForGraph(_ move: MoveRecord) async throws {
        guard move.taskKind != .catchUp else { return }
        let deadline = ContinuousClock.now + options.indexWait
        let size = try pageSize(move)
        try await retrying("check node \(move.to)'s index") {
            while ContinuousClock.now < deadline {
                let stats = try await endpoint(move.to).call(ShardRPC.stats, .with { $0.replica = ref(move) }, timeout: .seconds(10))
                if stats.replicas.allSatisfy({ $0.indexingLag <= 2 * UInt64(size) }) { return }
                try await pause(until: ContinuousClock.now + .milliseconds(200))
            }
            logger.warning("switching reads before the target's graph caught up", metadata: meta(move, [:]))
        }
    }

    // MARK: rollback

    private func rollBack(as state: MoveState, reason: String) async {
        guard var move = cluster.snapshot.moves[id] else { return }
        if move.isActive {
            if move.phase >= .switchReads {
                // Past the point of no return: only finishing is correct. Leave it running;
                // the scheduler starts it again after a pause.
                logger.error("move past switching reads stopped; it is retried", metadata: meta(move, ["error": "\(reason)"]))
                return
            }
            do {
                move = try await step { s throws(ShoalError) in try s.rollBackMove(id, as: state, error: reason, nowMs: nowMs()) }
            } catch {
                logger.error("move could not be rolled back", metadata: meta(move, ["error": "\(error)"]))
                return
            }
            logger.warning("move rolled back", metadata: meta(move, ["state": "\(state.rawValue)", "reason": "\(reason)"]))
        }
        // Also when the move was ended by another change (its source missed a write).
        // The drop names the incarnation this move created: once the move is rolled
        // back, another move may create the shard on the same node, and a late drop
        // must not hit that one. Unknown (rolled back while creating): the janitor's.
        // A catch-up's target stays, stale, for the next catch-up.
        guard let incarnation = move.targetIncarnation, move.abandoned(incarnation, on: move.to) else { return }
        do {
            try await retrying("drop the target replica on node \(move.to)", stopWhen: .never, within: .seconds(10)) {
                _ = try await endpoint(move.to).call(ShardRPC.dropReplica, .with {
                    $0.replica = ref(move)
                    $0.term = try leaderTerm()
                    $0.incarnation = incarnation
                }, timeout: .seconds(10))
            }
        } catch {
            logger.warning("the rolled-back target replica could not be dropped now; the replica janitor drops it once the node answers",
                           metadata: meta(move, ["error": "\(error)"]))
        }
    }

    // MARK: helpers

    /// What stops a `retrying` loop early (each attempt checks).
    private enum StopWhen {
        /// The operator cancelled the move, or it ended (its collection was deleted).
        case cancelledOrEnded
        /// The move ended: past switching reads a cancel no longer applies.
        case ended
        /// Nothing: cleaning up after the move has ended.
        case never
    }

    /// Runs `body` until it succeeds; failures are retried every second for
    /// `within` (default `options.retryFor`), then the move fails with the last. An
    /// attempt that got further than every earlier one (`progress` grew) starts the
    /// window again.
    private func retrying<T: Sendable>(
        _ what: String, stopWhen: StopWhen = .cancelledOrEnded, within: Duration? = nil, progress: (() -> UInt64)? = nil,
        _ body: () async throws -> T
    ) async throws -> T {
        var firstFailure: ContinuousClock.Instant?
        var progressAtFailure = progress?()
        let cancellable = stopWhen == .cancelledOrEnded
        while true {
            switch stopWhen {
            case .cancelledOrEnded: try checkCancel()
            case .ended: try checkEnded()
            case .never: break
            }
            do {
                return try await body()
            } catch let stop as MoveStop {
                throw stop
            } catch {
                let now = ContinuousClock.now
                let advanced = progress?()
                let first = advanced != progressAtFailure ? now : firstFailure ?? now
                firstFailure = first
                progressAtFailure = advanced
                guard now - first < (within ?? options.retryFor) else { throw MoveStop.failed("could not \(what): \(error)") }
                logger.warning("move step failed; retrying", metadata: ["move": "\(id)", "step": "\(what)", "error": "\(error)"])
                if cancellable { try await pause(until: now + .seconds(1)) } else { try? await Task.sleep(for: .seconds(1)) }
            }
        }
    }

    /// Sleeps until `instant`, waking for a cancel request.
    private func pause(until instant: ContinuousClock.Instant) async throws {
        while ContinuousClock.now < instant {
            try checkCancel()
            try? await Task.sleep(until: min(instant, ContinuousClock.now + .milliseconds(100)), clock: .continuous)
        }
    }

    /// Stops the move if the operator cancelled it, or it ended (its collection was deleted).
    private func checkCancel() throws {
        try checkEnded()
        if cluster.snapshot.moves[id]?.cancelRequestedMs != nil { throw MoveStop.cancelled }
    }

    private func checkEnded() throws {
        if Task.isCancelled || cluster.leadership.currentTerm == nil { throw MoveStop.failed("this coordinator no longer leads") }
        guard cluster.snapshot.moves[id]?.isActive == true else { throw MoveStop.failed("move \(id) has ended") }
    }

    private func record() throws -> MoveRecord {
        guard let move = cluster.snapshot.moves[id] else { throw MoveStop.failed("move \(id) is not in the cluster state") }
        return move
    }

    /// This coordinator's term, carried by every command it sends a node (a node that
    /// has seen a newer one refuses it); the move stops if this coordinator no longer leads.
    private func leaderTerm() throws -> UInt64 {
        guard let term = try? cluster.commandTerm() else { throw MoveStop.failed("this coordinator no longer leads") }
        return term
    }

    /// Fences `node`'s replica of the moving shard (of `incarnation`, if known) at the
    /// current state's epoch, or retires it; retried like any step.
    private func fence(_ node: String, _ move: MoveRecord, incarnation: UInt32?, retire: Bool) async throws {
        let epoch = cluster.snapshot.epoch
        try await retrying(retire ? "retire the replica on node \(node)" : "fence the replica on node \(node)", stopWhen: retire ? .ended : .cancelledOrEnded) {
            _ = try await endpoint(node).call(ShardRPC.fenceReplica, .with {
                $0.replica = ref(move)
                if let incarnation { $0.incarnation = incarnation }
                $0.minEpoch = epoch
                $0.retire = retire
                $0.term = try leaderTerm()
            }, timeout: .seconds(10))
        }
    }

    private func endpoint(_ node: String) throws -> any UnaryTransport {
        guard let address = cluster.snapshot.nodes[node]?.address else { throw ShoalError(.notFound, "no node \(node)") }
        return try cluster.nodes.transport(for: address)
    }

    private func collectionConfig(_ move: MoveRecord) throws -> CollectionConfig {
        guard let collection = cluster.snapshot.collections[move.collection] else {
            throw MoveStop.failed("collection \(move.collection) was deleted")
        }
        return collection.config
    }

    private func ref(_ move: MoveRecord) -> Shoal_V1_ReplicaRef {
        .with {
            $0.collection = move.collection
            $0.shardID = move.shard
        }
    }

    private func meta(_ move: MoveRecord, _ extra: Logger.Metadata) -> Logger.Metadata {
        extra.merging(["move": "\(id)", "collection": "\(move.collection)", "shard": "\(move.shard)",
                       "from": "\(move.from)", "to": "\(move.to)"]) { a, _ in a }
    }
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

