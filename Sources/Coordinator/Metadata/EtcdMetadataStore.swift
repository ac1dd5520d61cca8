import Etcd
import Foundation
import Logging
import VectorCore

/// The cluster state in etcd, under one key prefix:
///
/// ```
/// <prefix>state               the state without its collections (JSON): nodes, moves, epoch…
/// <prefix>collections/<name>  one collection's configuration and placement (JSON)
/// <prefix>leader              the leading coordinator (JSON), under its session lease
/// <prefix>coordinators/<name> every live coordinator (JSON), under its session lease
/// <prefix>versions            the write-version ceiling (`EtcdVersionCeiling`)
/// <prefix>issuers/<name>      each coordinator's version tie-break number
/// ```
///
/// Every change is one Txn: it compares the `state` key's mod revision with the one
/// the change was computed from (every change rewrites `state`, so any other change
/// in between fails the compare), and, for the leader's changes, the `leader` key's
/// create revision with the leader's term; it puts `state` and the collections that
/// changed, and deletes those that went. A load is one Range over the prefix (one
/// revision). The revision of a stored state is its `state` key's mod revision.
public final class EtcdMetadataStore: MetadataStore {
    public let client: EtcdClient
    public let prefix: String

    public init(client: EtcdClient, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    var stateKey: String { prefix + "state" }
    var leaderKey: String { prefix + "leader" }
    var collectionsPrefix: String { prefix + "collections/" }
    var coordinatorsPrefix: String { prefix + "coordinators/" }
    func collectionKey(_ name: String) -> String { collectionsPrefix + name }

    public func load() async throws -> StoredState? {
        try await loadWithRevision().state
    }

    /// The stored state, and etcd's revision at the read (at or above the state's own).
    func loadWithRevision() async throws -> (state: StoredState?, revision: Int64) {
        let (kvs, revision) = try await client.getPrefix(prefix)
        return (try decodeState(kvs), revision)
    }

    private func decodeState(_ kvs: [EtcdKeyValue]) throws -> StoredState? {
        guard let stateKV = kvs.first(where: { $0.key == stateKey }) else {
            if kvs.contains(where: { $0.key.hasPrefix(collectionsPrefix) }) {
                throw ShoalError(.dataLoss, "etcd holds collections under \(prefix) but no \(stateKey): refusing to start from a partial cluster state")
            }
            return nil
        }
        var state = try Self.decode(ClusterState.self, stateKV.value, key: stateKV.key)
        var collections: [String: CollectionState] = [:]
        for kv in kvs where kv.key.hasPrefix(collectionsPrefix) {
            let collection = try Self.decode(CollectionState.self, kv.value, key: kv.key)
            collections[collection.config.name] = collection
        }
        state.collections = collections
        return StoredState(state: state, revision: stateKV.modRevision)
    }

    public func store(_ next: ClusterState, previous: ClusterState, over revision: Int64, term: Int64?) async throws -> Int64? {
        var compares: [EtcdCompare] = [.modRevision(stateKey, equals: revision)]
        if let term, term > 0 { compares.append(.createRevision(leaderKey, equals: term)) }
        var body = next
        body.collections = [:]
        var ops: [EtcdOperation] = [.put(stateKey, try Self.encode(body))]
        for (name, collection) in next.collections.sorted(by: { $0.key < $1.key }) where previous.collections[name] != collection {
            ops.append(.put(collectionKey(name), try Self.encode(collection)))
        }
        for name in previous.collections.keys.sorted() where next.collections[name] == nil {
            ops.append(.delete(collectionKey(name)))
        }
        let result = try await client.txn(if: compares, then: ops, else: [.get(leaderKey)])
        if result.succeeded { return result.revision }
        if let term, term > 0, result.ranges.first?.first?.createRevision != term {
            throw ShoalError(.failedPrecondition, "refused by etcd: term \(term) no longer leads the cluster (another coordinator was elected); nothing was changed")
        }
        return nil
    }

    /// Follows every change of the stored state after `revision`, publishing each to
    /// `cluster` (a full reload at the change: one consistent read). Resumes after
    /// etcd failures and compactions from the revision of its latest reload (etcd's
    /// revision then, so a compaction past an old state key is never asked for
    /// again); returns when the task is cancelled.
    public func follow(into cluster: ClusterController, after revision: Int64, logger: Logger) async {
        var after = revision
        while !Task.isCancelled {
            do {
                for try await batch in client.watch(prefix: stateKey, after: after) {
                    let (newest, read) = try await loadWithRevision()
                    if let newest { cluster.publish(newest) }
                    after = max(after, read, batch.revision)
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("watch of the cluster state stopped; reloading", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
                if let (newest, read) = try? await loadWithRevision() {
                    if let newest { cluster.publish(newest) }
                    after = read
                }
            }
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], key: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw ShoalError(.dataLoss, "etcd key \(key) does not hold a valid \(T.self): \(error)")
        }
    }
}

/// The write-version ceiling (`WriteVersions`) in etcd: one key, raised by
/// compare-and-swap, never lowered.
public struct EtcdVersionCeiling: VersionCeiling {
    let client: EtcdClient
    let key: String

    public init(client: EtcdClient, key: String) {
        self.client = client
        self.key = key
    }

    public func current() async throws -> UInt64 {
        try await read().value
    }

    public func raise(to wanted: UInt64) async throws -> UInt64 {
        for _ in 0..<50 {
            let (stored, revision) = try await read()
            if stored >= wanted { return stored }
            let result = try await client.txn(if: [.modRevision(key, equals: revision)], then: [.put(key, Array(String(wanted).utf8))])
            if result.succeeded { return wanted }
        }
        throw ShoalError(.unavailable, "the write-version ceiling in etcd kept changing; try again")
    }

    private func read() async throws -> (value: UInt64, revision: Int64) {
        let (kv, _) = try await client.get(key)
        guard let kv else { return (0, 0) }
        guard let value = UInt64(String(decoding: kv.value, as: UTF8.self)) else {
            throw ShoalError(.dataLoss, "etcd key \(key) does not hold a version ceiling")
        }
        return (value, kv.modRevision)
    }
}
