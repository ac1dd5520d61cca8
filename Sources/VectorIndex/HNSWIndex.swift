import CVectorKernels
import Synchronization
import VectorCore

/// An HNSW graph over vectors addressed by dense internal ids (`UInt32`), with exact search over the
/// same storage, filtered search, tombstone deletes, re-insert updates, vacuum and a byte image.
///
/// Concurrency: every method may be called from any thread. Searches run in parallel with each other and
/// with inserts; no lock is held across a search (neighbour lists are read with acquire loads; each list
/// is changed under its own node's spin lock). `update`, `delete` and `vacuum` wait for a grace period
/// (searches that started earlier finish) before memory is reused. The caller serialises writes to the
/// same id (the shard's indexer does). `serialize()` needs no concurrent writers.
///
/// Distances are internal (smaller is nearer); `Metric.score(distance:)` converts them for users.
public final class HNSWIndex: @unchecked Sendable {
    public let dimension: Int
    public let metric: Metric
    public let params: HNSWParameters
    /// Largest internal id + 1. Address space for this many ids is reserved up front; memory is committed
    /// as ids are used, so a large capacity costs nothing until filled.
    public let capacity: Int

    let store: NodeStore
    let kernel: shoal_dist_fn
    let dotI8I8: shoal_dot_i8i8_fn
    /// Internal distance = sign * kernel + bias (l2: kernel; cosine: 1 − dot; ip: −dot).
    let sign: Float
    let bias: Float
    /// Entry point: bit 63 set when present, bits 32..39 its level, low 32 bits its id.
    let entry = Atomic<UInt64>(0)
    /// Held by inserts that raise the top level and by entry-point changes.
    let topLock = Lock()
    /// One more than the highest id ever inserted.
    let highWater = Atomic<UInt32>(0)
    let liveCount = Atomic<Int>(0)
    let deletedCount = Atomic<Int>(0)
    let pool: ContextPool
    let epochs = ReaderEpochs()
    /// Serialises vacuum and image writing against each other.
    let maintenance = Lock()
    /// Running estimate of distances per unit of ef in an unfiltered graph search (Float bits).
    let graphCostPerEf: Atomic<UInt32>

    /// An empty index. `capacity` bounds internal ids (default 2^24, only address space until used).
    public init(dimension: Int, metric: Metric, params: HNSWParameters = HNSWParameters(), capacity: Int = 1 << 24) throws(IndexError) {
        precondition(dimension > 0, "dimension must be positive")
        self.dimension = dimension
        self.metric = metric
        self.params = params
        self.capacity = capacity
        store = try NodeStore(dimension: dimension, m: params.m, capacity: capacity, quantized: params.quantized(dimension: dimension))
        dotI8I8 = shoal_select_dot_i8i8(params.allowSIMD ? 1 : 0)!
        kernel = shoal_select_kernel(metric == .l2 ? 0 : 1, params.allowSIMD ? 1 : 0)!
        switch metric {
        case .l2: (sign, bias) = (1, 0)
        case .cosine: (sign, bias) = (-1, 1)
        case .innerProduct: (sign, bias) = (-1, 0)
        }
        pool = ContextPool(capacity: capacity)
        graphCostPerEf = Atomic(Float(params.maxLinks0).bitPattern)
    }

    // MARK: counts

    /// Bytes of address space this index reserved (`IndexFootprint`).
    public var reservedBytes: Int { params.reservedBytes(dimension: dimension, capacity: capacity) }

    /// Points that can be returned (inserted and not deleted).
    public var count: Int { liveCount.load(ordering: .relaxed) }
    /// Tombstoned points not yet reclaimed by `vacuum()`.
    public var deletedPoints: Int { deletedCount.load(ordering: .relaxed) }
    /// Highest inserted id + 1: exact scans cover ids below this.
    public var idLimit: Int { Int(highWater.load(ordering: .acquiring)) }
    /// Memory per stored vector in this layout (vector row, level-0 list, node metadata, upper levels).
    public var bytesPerVector: Double { store.bytesPerVector(m: params.m) }

    /// True when `id` holds a live (searchable) point.
    public func contains(id: UInt32) -> Bool { Int(id) < capacity && store.isLive(id) }

    // MARK: distances

    @inline(__always)
    func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        sign * kernel(a, b, dimension) + bias
    }

    @inline(__always)
    func distance(_ q: UnsafePointer<Float>, _ id: UInt32) -> Float { distance(q, store.vector(id)) }

    @inline(__always)
    func distance(_ a: UInt32, _ b: UInt32) -> Float { distance(store.vector(a), store.vector(b)) }

    /// The internal distance between two caller vectors under this index's metric (normalising for cosine).
    public func distance(between a: [Float], and b: [Float]) -> Float {
        precondition(a.count == dimension && b.count == dimension)
        var x = a, y = b
        if metric == .cosine { normalize(&x); normalize(&y) }
        return x.withUnsafeBufferPointer { p in y.withUnsafeBufferPointer { distance(p.baseAddress!, $0.baseAddress!) } }
    }

    func normalize(_ v: inout [Float]) {
        v.withUnsafeMutableBufferPointer { normalize($0) }
    }

    func normalize(_ v: UnsafeMutableBufferPointer<Float>) {
        let base = v.baseAddress!
        let norm = shoal_dot_scalar(base, base, v.count).squareRoot()
        if norm > 0 { for i in 0..<v.count { v[i] /= norm } }
    }

    // MARK: entry point

    @inline(__always)
    func loadEntry() -> (id: UInt32, level: Int)? {
        let e = entry.load(ordering: .acquiring)
        if e == 0 { return nil }
        return (UInt32(truncatingIfNeeded: e), Int((e >> 32) & 0xFF))
    }

    @inline(__always)
    func storeEntry(_ id: UInt32, level: Int) {
        entry.store((1 << 63) | (UInt64(level) << 32) | UInt64(id), ordering: .releasing)
    }

    /// A node's level: a hash of (seed, id), geometric with P(level ≥ l) = M^−l.
    func levelFor(_ id: UInt32) -> Int {
        var z = params.seed &+ UInt64(id) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Double(z >> 11) * 0x1.0p-53
        var level = 0
        var p = 1.0 / Double(params.m)
        while u < p && level < 30 {
            level += 1
            p /= Double(params.m)
        }
        return level
    }

    // MARK: validation

    func validate(_ v: UnsafeBufferPointer<Float>) throws {
        guard v.count == dimension else { throw IndexError.dimensionMismatch(expected: dimension, got: v.count) }
        for x in v where !x.isFinite { throw IndexError.nonFiniteValue }
    }

    func validate(id: UInt32) throws {
        guard Int(id) < capacity else { throw IndexError.idOutOfRange(id: id, capacity: capacity) }
    }

    /// Copies a caller vector into scratch storage, normalised for cosine, and runs `body` on it.
    @inline(__always)
    func withPrepared<R>(_ v: UnsafeBufferPointer<Float>, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: store.vectorStride) { tmp in
            _ = tmp.initialize(fromContentsOf: v)
            if metric == .cosine { normalize(UnsafeMutableBufferPointer(rebasing: tmp[0..<dimension])) }
            return try body(UnsafePointer(tmp.baseAddress!))
        }
    }
}
