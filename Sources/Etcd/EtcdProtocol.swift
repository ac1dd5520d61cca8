import EtcdProto
import Foundation
import ShoalRPC

/// etcd's v3 methods the client calls (Protos/etcd/rpc.proto).
enum EtcdRPC {
    static let range = RPC<Etcdserverpb_RangeRequest, Etcdserverpb_RangeResponse>("/etcdserverpb.KV/Range")
    static let put = RPC<Etcdserverpb_PutRequest, Etcdserverpb_PutResponse>("/etcdserverpb.KV/Put")
    static let deleteRange = RPC<Etcdserverpb_DeleteRangeRequest, Etcdserverpb_DeleteRangeResponse>("/etcdserverpb.KV/DeleteRange")
    static let txn = RPC<Etcdserverpb_TxnRequest, Etcdserverpb_TxnResponse>("/etcdserverpb.KV/Txn")
    static let leaseGrant = RPC<Etcdserverpb_LeaseGrantRequest, Etcdserverpb_LeaseGrantResponse>("/etcdserverpb.Lease/LeaseGrant")
    static let leaseRevoke = RPC<Etcdserverpb_LeaseRevokeRequest, Etcdserverpb_LeaseRevokeResponse>("/etcdserverpb.Lease/LeaseRevoke")
    /// Bidirectional streams: LeaseKeepAliveRequest → LeaseKeepAliveResponse, WatchRequest → WatchResponse.
    static let leaseKeepAlive = "/etcdserverpb.Lease/LeaseKeepAlive"
    static let watch = "/etcdserverpb.Watch/Watch"
    /// Stream metadata asking the member to end the stream when it has no leader
    /// (etcd's rpctypes.MetadataRequireLeaderKey), so a partitioned member does not
    /// keep a watch or keepalive silently stalled.
    static let requireLeader = [("hasleader", "true")]
}

/// A key range in etcd's terms: [key, rangeEnd), an empty rangeEnd meaning `key` alone.
struct EtcdKeyRange {
    var key: Data
    var rangeEnd: Data

    static func single(_ key: String) -> EtcdKeyRange { EtcdKeyRange(key: Data(key.utf8), rangeEnd: Data()) }

    /// Every key that starts with `prefix`. etcd's rule: the range ends at the prefix
    /// with its last byte below 0xff incremented (and the bytes after it dropped);
    /// "\0" means "no end", which is also what the empty prefix (every key) uses.
    static func prefix(_ prefix: String) -> EtcdKeyRange {
        let bytes = Array(prefix.utf8)
        if bytes.isEmpty { return EtcdKeyRange(key: Data([0]), rangeEnd: Data([0])) }
        return EtcdKeyRange(key: Data(bytes), rangeEnd: Data(prefixRangeEnd(bytes)))
    }

    static func prefixRangeEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }
}

extension Etcdserverpb_RangeRequest {
    init(_ range: EtcdKeyRange) {
        self.init()
        key = range.key
        rangeEnd = range.rangeEnd
    }
}

extension Etcdserverpb_DeleteRangeRequest {
    init(_ range: EtcdKeyRange) {
        self.init()
        key = range.key
        rangeEnd = range.rangeEnd
    }
}

extension Etcdserverpb_PutRequest {
    init(key: String, value: [UInt8], lease: Int64) {
        self.init()
        self.key = Data(key.utf8)
        self.value = Data(value)
        self.lease = lease
    }
}

extension EtcdKeyValue {
    init(_ kv: Mvccpb_KeyValue) {
        self.init(key: String(decoding: kv.key, as: UTF8.self), value: [UInt8](kv.value),
                  createRevision: kv.createRevision, modRevision: kv.modRevision,
                  version: kv.version, lease: kv.lease)
    }
}

extension Etcdserverpb_Compare {
    init(_ compare: EtcdCompare) {
        self.init()
        result = .equal
        switch compare {
        case .modRevision(let key, let revision):
            self.key = Data(key.utf8)
            target = .mod
            modRevision = revision
        case .createRevision(let key, let revision):
            self.key = Data(key.utf8)
            target = .create
            createRevision = revision
        case .version(let key, let version):
            self.key = Data(key.utf8)
            target = .version
            self.version = version
        case .value(let key, let value):
            self.key = Data(key.utf8)
            target = .value
            self.value = Data(value)
        }
    }
}

extension Etcdserverpb_RequestOp {
    init(_ operation: EtcdOperation) {
        self.init()
        switch operation {
        case .put(let key, let value, let lease): requestPut = Etcdserverpb_PutRequest(key: key, value: value, lease: lease)
        case .delete(let key): requestDeleteRange = Etcdserverpb_DeleteRangeRequest(.single(key))
        case .deletePrefix(let prefix): requestDeleteRange = Etcdserverpb_DeleteRangeRequest(.prefix(prefix))
        case .get(let key): requestRange = Etcdserverpb_RangeRequest(.single(key))
        case .getPrefix(let prefix): requestRange = Etcdserverpb_RangeRequest(.prefix(prefix))
        }
    }
}

extension Etcdserverpb_TxnRequest {
    init(compares: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation]) {
        self.init()
        compare = compares.map(Etcdserverpb_Compare.init)
        self.success = success.map(Etcdserverpb_RequestOp.init)
        self.failure = failure.map(Etcdserverpb_RequestOp.init)
    }
}

extension EtcdTxnResult {
    init(_ response: Etcdserverpb_TxnResponse) {
        let ranges: [[EtcdKeyValue]] = response.responses.compactMap { op in
            guard case .responseRange(let range)? = op.response else { return nil }
            return range.kvs.map(EtcdKeyValue.init)
        }
        self.init(succeeded: response.succeeded, revision: response.header.revision, ranges: ranges)
    }
}

extension EtcdWatchEvent {
    init(_ event: Mvccpb_Event) {
        self.init(kind: event.type == .delete ? .delete : .put, kv: EtcdKeyValue(event.kv))
    }
}
