import EtcdProto
import Foundation
import VectorCore

/// A client for etcd's v3 gRPC API: keys, transactions, leases and watches.
///
/// Reads are linearizable (etcd's default). Every call has `callTimeout` per member
/// tried; with several endpoints the client uses one, moves to the next when it is
/// unreachable, and sticks with one that works. Failures are `ShoalError`s carrying
/// etcd's status (UNAVAILABLE when no member answers), except `EtcdError` for watches.
public final class EtcdClient: Sendable {
    /// "host:port" of each member, as given.
    public let endpoints: [String]
    let members: EtcdEndpoints

    /// endpoints: "host:port" each; INVALID_ARGUMENT (ShoalError) for an empty or malformed list.
    public init(endpoints: [String], callTimeout: Duration = .seconds(5)) throws {
        self.members = try EtcdEndpoints(endpoints, callTimeout: callTimeout)
        self.endpoints = endpoints
    }

    /// Splits "h1:p1,h2:p2" (spaces around commas allowed; an `http://` prefix, as
    /// etcdctl takes them, is dropped) and checks each part.
    public static func parseEndpoints(_ text: String) throws -> [String] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .map { $0.hasPrefix("http://") ? String($0.dropFirst("http://".count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : $0 }
        guard !(parts.count == 1 && parts[0].isEmpty) else {
            throw ShoalError(.invalidArgument, "no etcd endpoints given")
        }
        for part in parts {
            guard !part.isEmpty else { throw ShoalError(.invalidArgument, "an empty etcd endpoint in '\(text)'") }
            try EtcdEndpoints.validate(part)
        }
        return parts
    }

    // MARK: keys

    /// The key's current value (nil if absent) and the store's revision.
    public func get(_ key: String) async throws -> (kv: EtcdKeyValue?, revision: Int64) {
        let response = try await range(.single(key))
        return (response.kvs.first.map(EtcdKeyValue.init), response.header.revision)
    }

    /// Every key starting with `prefix`, in key order, and the store's revision.
    public func getPrefix(_ prefix: String) async throws -> (kvs: [EtcdKeyValue], revision: Int64) {
        let response = try await range(.prefix(prefix))
        return (response.kvs.map(EtcdKeyValue.init), response.header.revision)
    }

    private func range(_ range: EtcdKeyRange) async throws -> Etcdserverpb_RangeResponse {
        try await members.call(EtcdRPC.range, Etcdserverpb_RangeRequest(range), idempotent: true)
    }

    /// Sets the key (attached to `lease` unless 0); returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        let request = Etcdserverpb_PutRequest(key: key, value: value, lease: lease)
        return try await members.call(EtcdRPC.put, request, idempotent: false).header.revision
    }

    /// Deletes the key if present; returns the store's revision.
    @discardableResult
    public func delete(_ key: String) async throws -> Int64 {
        try await deleteRange(.single(key))
    }

    /// Deletes every key starting with `prefix`; returns the store's revision.
    @discardableResult
    public func deletePrefix(_ prefix: String) async throws -> Int64 {
        try await deleteRange(.prefix(prefix))
    }

    private func deleteRange(_ range: EtcdKeyRange) async throws -> Int64 {
        let request = Etcdserverpb_DeleteRangeRequest(range)
        return try await members.call(EtcdRPC.deleteRange, request, idempotent: false).header.revision
    }

    /// One atomic transaction: if every comparison holds, runs `success`, else `failure`.
    /// A key may be written at most once per branch (etcd refuses it: INVALID_ARGUMENT).
    public func txn(
        if compares: [EtcdCompare], then success: [EtcdOperation], else failure: [EtcdOperation] = []
    ) async throws -> EtcdTxnResult {
        let request = Etcdserverpb_TxnRequest(compares: compares, success: success, failure: failure)
        let readOnly = (success + failure).allSatisfy {
            if case .get = $0 { return true }
            if case .getPrefix = $0 { return true }
            return false
        }
        return EtcdTxnResult(try await members.call(EtcdRPC.txn, request, idempotent: readOnly))
    }

    // MARK: leases

    /// Grants a lease of `seconds` (etcd may raise it to its minimum); returns its id.
    public func grantLease(ttl seconds: Int64) async throws -> Int64 {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = seconds
        let response = try await members.call(EtcdRPC.leaseGrant, request, idempotent: false)
        guard response.error.isEmpty else {
            throw ShoalError(.failedPrecondition, "etcd refused a lease of \(seconds) s: \(response.error)")
        }
        return response.id
    }

    /// Revokes the lease, deleting every key attached to it. NOT_FOUND if it is gone.
    public func revokeLease(_ id: Int64) async throws {
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = id
        _ = try await members.call(EtcdRPC.leaseRevoke, request, idempotent: true)
    }
}
