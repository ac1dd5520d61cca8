import Etcd
import Foundation
import Logging
import Synchronization
import VectorCore

/// A coordinator's session with etcd: a lease kept alive in the background, this
/// coordinator's entry under `coordinators/` on that lease, and its campaign for
/// the `leader` key (the way etcd's own election recipe works: whoever creates
/// the key under its lease leads until the lease ends; the key's create revision
/// is the leader's term, which only grows from one leader to the next).
///
/// Contract:
/// - `currentTerm` is non-nil only while this coordinator holds the leader key
///   and its lease has more than `margin` left since its last renewal, by the
///   monotonic clock, which keeps running while the process is paused: a
///   coordinator that wakes from SIGSTOP past its lease no longer claims to lead,
///   before it has talked to anyone;
/// - `writeRefusal` is non-nil while the session is lost (its lease expired or
///   etcd cannot be reached): a coordinator that cannot prove its copy of the
///   state is current takes no writes;
/// - a lost session is replaced (new lease, new entry, new campaign) as soon as
///   etcd answers again.
public final class CoordinatorSession: Leadership {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var address: String
        public var startedMs: Int64
    }

    public let client: EtcdClient
    public let store: EtcdMetadataStore
    public let me: Entry
    /// The lease's time to live.
    public let ttl: Duration
    private let logger: Logger
    private let status = Mutex(Status())

    private struct Status {
        var lease: Int64 = 0
        var keeper: EtcdLeaseKeeper?
        var term: Int64?
        var leader: Entry?
        var lostReason: String? = "not connected to etcd yet"
    }

    /// How long before the lease's end this coordinator stops claiming to lead (a quarter of it:
    /// less than the time between keepalive rounds, a third).
    var margin: Duration { ttl / 4 }

    public init(client: EtcdClient, store: EtcdMetadataStore, name: String, address: String, ttl: Duration, logger: Logger) {
        self.client = client
        self.store = store
        self.me = Entry(name: name, address: address, startedMs: Int64(Date().timeIntervalSince1970 * 1000))
        self.ttl = ttl
        self.logger = logger
    }

    var entryKey: String { store.coordinatorsPrefix + me.name }

    // MARK: Leadership

    public var currentTerm: Int64? {
        status.withLock { s in
            guard let term = s.term, let keeper = s.keeper, keeper.timeLeft > margin else { return nil }
            return term
        }
    }

    public var leaderAddress: String? {
        status.withLock { s in s.term == nil && s.leader?.name != me.name ? s.leader?.address : nil }
    }

    public var writeRefusal: String? {
        status.withLock { s in
            if let reason = s.lostReason { return reason }
            guard s.keeper?.isAlive == true else { return "this coordinator's session with etcd has expired; it takes no writes until it is back" }
            return nil
        }
    }

    // MARK: running

    /// Opens the session once (lease, entry): throws if etcd does not answer.
    public func open() async throws {
        let lease = try await client.grantLease(ttl: max(1, ttl.components.seconds))
        try await client.put(entryKey, try EtcdMetadataStore.encode(me), lease: lease)
        let keeper = client.keepAlive(lease, ttl: ttl, every: ttl / 3)
        status.withLock { s in
            s.lease = lease
            s.keeper = keeper
            s.lostReason = nil
        }
        logger.info("etcd session opened", metadata: ["lease": "\(lease)", "ttl_s": "\(ttl.components.seconds)"])
    }

    /// Keeps the session and the campaign going until cancelled; `onLead(term)` runs
    /// when this coordinator becomes the leader, `onFollow()` when it stops leading.
    public func run(onLead: @escaping @Sendable (Int64) async -> Void, onFollow: @escaping @Sendable () async -> Void) async {
        var leading: Int64?
        while !Task.isCancelled {
            await campaignOnce()
            let term = currentTerm
            if term != leading {
                if leading != nil {
                    logger.warning("this coordinator no longer leads", metadata: ["term": "\(leading!)"])
                    await onFollow()
                }
                if let term {
                    logger.info("this coordinator leads", metadata: ["term": "\(term)"])
                    await onLead(term)
                }
                leading = term
            }
            try? await Task.sleep(for: Self.pollInterval)
        }
        if leading != nil { await onFollow() }
    }

    static let pollInterval: Duration = .milliseconds(200)

    /// One round: renews the session if it was lost, then takes the leader key if it
    /// is free, else learns who holds it.
    private func campaignOnce() async {
        let (keeper, lease) = status.withLock { ($0.keeper, $0.lease) }
        if keeper?.isAlive != true {
            keeper?.stop()
            status.withLock { s in
                s.term = nil
                s.keeper = nil
                if s.lostReason == nil { s.lostReason = "this coordinator lost its session with etcd; it takes no writes until it is back" }
            }
            do { try await open() } catch {
                status.withLock { $0.lostReason = "etcd is unavailable to this coordinator (\(error)); it takes no writes until etcd is back" }
                return
            }
            return await campaignOnce()
        }
        do {
            let value = try EtcdMetadataStore.encode(me)
            let result = try await client.txn(
                if: [.createRevision(store.leaderKey, equals: 0)],
                then: [.put(store.leaderKey, value, lease: lease)],
                else: [.get(store.leaderKey)])
            if result.succeeded {
                status.withLock { s in
                    s.term = result.revision
                    s.leader = me
                }
                return
            }
            guard let held = result.ranges.first?.first else { return }
            let entry = try? JSONDecoder().decode(Entry.self, from: Data(held.value))
            if entry?.name == me.name && held.lease != lease {
                // The leader key is held by an earlier run of this coordinator (names are
                // unique): that process is gone, so its lease is ended now rather than
                // left to run out, and the campaign goes on at once.
                logger.info("ending the lease of this coordinator's previous run, which held the lead", metadata: ["lease": "\(held.lease)"])
                try? await client.revokeLease(held.lease)
                return await campaignOnce()
            }
            status.withLock { s in
                s.leader = entry
                s.term = held.lease == lease ? held.createRevision : nil
            }
        } catch {
            logger.warning("etcd did not answer the leader campaign", metadata: ["error": "\(error)"])
        }
    }

    /// Gives up leadership and the session (a clean stop): another coordinator leads at once.
    public func close() async {
        let (keeper, lease) = status.withLock { s in
            s.term = nil
            s.lostReason = "this coordinator is stopping"
            return (s.keeper, s.lease)
        }
        keeper?.stop()
        if lease != 0 { try? await client.revokeLease(lease) }
    }

    /// Every coordinator with a live session, and the leader's entry and term.
    public func coordinators() async throws -> (entries: [Entry], leader: Entry?, term: Int64) {
        let (kvs, _) = try await client.getPrefix(store.coordinatorsPrefix)
        let entries = kvs.compactMap { try? JSONDecoder().decode(Entry.self, from: Data($0.value)) }.sorted { $0.name < $1.name }
        let (leaderKV, _) = try await client.get(store.leaderKey)
        let leader = leaderKV.flatMap { try? JSONDecoder().decode(Entry.self, from: Data($0.value)) }
        return (entries, leader, leaderKV?.createRevision ?? 0)
    }

    /// This coordinator's version tie-break number (`HybridLogicalClock.issuer`):
    /// kept in etcd under its name, the lowest free one on first start. A number is
    /// claimed under `issuers-by-number/<n>` and the name under `issuers/<name>` in
    /// one Txn that requires both absent, so two coordinators starting at once never
    /// share one. FAILED_PRECONDITION once all numbers are taken.
    public func issuerNumber() async throws -> UInt64 {
        let byName = store.prefix + "issuers/"
        let byNumber = store.prefix + "issuers-by-number/"
        for _ in 0..<50 {
            let (kvs, _) = try await client.getPrefix(byName)
            if let mine = kvs.first(where: { $0.key == byName + me.name }), let number = UInt64(String(decoding: mine.value, as: UTF8.self)) {
                return number
            }
            let (claimed, _) = try await client.getPrefix(byNumber)
            let taken = Set(claimed.compactMap { UInt64($0.key.dropFirst(byNumber.count)) })
            guard let free = (0..<HybridLogicalClock.issuers).first(where: { !taken.contains($0) }) else {
                throw ShoalError(.failedPrecondition, "all \(HybridLogicalClock.issuers) version tie-break numbers are taken (one per coordinator name ever started); reuse a coordinator name")
            }
            let result = try await client.txn(
                if: [.createRevision(byName + me.name, equals: 0), .createRevision(byNumber + String(free), equals: 0)],
                then: [.put(byName + me.name, Array(String(free).utf8)), .put(byNumber + String(free), Array(me.name.utf8))])
            if result.succeeded { return free }
        }
        throw ShoalError(.unavailable, "could not take a version tie-break number in etcd; try again")
    }
}
