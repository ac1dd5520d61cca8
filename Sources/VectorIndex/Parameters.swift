import VectorCore

/// Build and search parameters of an HNSW index.
public struct HNSWParameters: Sendable, Hashable {
    /// Links per node on upper levels; level 0 keeps up to `2 * m`.
    public var m: Int
    /// Beam width while inserting.
    public var efConstruction: Int
    /// Default beam width of a search when the caller passes none.
    public var ef: Int
    /// Seed of level generation: a node's level is a hash of (seed, id), so builds are reproducible
    /// whatever the thread count or insertion order.
    public var seed: UInt64
    /// Use the AVX2+FMA kernels when the CPU has them (false forces the scalar reference).
    public var allowSIMD: Bool
    /// Cost of one distance in a sequential exact scan relative to one in the graph walk (random access,
    /// heaps, visited set). `HNSWIndex.plan(k:ef:filter:)` (HNSWIndex+Exact.swift) takes exact search when
    /// `matches * exactDistanceCost` is below the estimated graph cost. Measured on 128-d and 512-d data.
    public var exactDistanceCost: Float
    /// Keep an int8 copy of every vector (one scale per row): exact scans read a quarter of the bytes, then
    /// re-rank their best candidates on the full vectors. `nil` = on when dimension ≥ 256, where exact scans
    /// are memory-bound. Costs about `dimension + 8` bytes per vector.
    public var quantizedScan: Bool?
    /// Walk level 0 on the int8 copy (when there is one) and re-rank the `ef` survivors on full vectors.
    /// `nil` = whenever the int8 copy exists (measured: no gain on 128-d rows, ~1.4× on 512-d rows).
    public var quantizedTraversal: Bool?
    /// Cache lines of each neighbour's row prefetched before its distance is computed.
    public var prefetchLines: Int
    /// Rows prefetched ahead of the distance loop (0 = all of a node's unvisited neighbours up front).
    public var prefetchAhead: Int
    /// Like `exactDistanceCost`, for a scan over the int8 copy.
    public var quantizedScanCost: Float

    public init(m: Int = 16, efConstruction: Int = 200, ef: Int = 64, seed: UInt64 = 0x5EED_0F_5_4A1,
                allowSIMD: Bool = true, exactDistanceCost: Float = 0.55, quantizedScan: Bool? = nil,
                quantizedScanCost: Float = 0.2, quantizedTraversal: Bool? = nil, prefetchLines: Int = 8, prefetchAhead: Int = 0) {
        precondition(m >= 2 && m <= 128, "m must be in 2...128")
        precondition(efConstruction >= 1 && ef >= 1)
        self.m = m
        self.efConstruction = efConstruction
        self.ef = ef
        self.seed = seed
        self.allowSIMD = allowSIMD
        self.exactDistanceCost = exactDistanceCost
        self.quantizedScan = quantizedScan
        self.quantizedScanCost = quantizedScanCost
        self.quantizedTraversal = quantizedTraversal
        self.prefetchLines = prefetchLines
        self.prefetchAhead = prefetchAhead
    }

    /// Maximum links of a node on level 0.
    public var maxLinks0: Int { 2 * m }

    /// Whether an index of `dimension` keeps the int8 copy (`quantizedScan`, or the default).
    public func quantized(dimension: Int) -> Bool { quantizedScan ?? IndexFootprint.quantizedByDefault(dimension: dimension) }

    /// Bytes of address space an index of `dimension` and `capacity` ids reserves.
    public func reservedBytes(dimension: Int, capacity: Int) -> Int {
        IndexFootprint.reservedBytes(dimension: dimension, m: m, capacity: capacity, quantized: quantized(dimension: dimension))
    }
}

/// Which search ran.
public enum SearchStrategy: String, Sendable, Hashable, CaseIterable {
    /// Graph walk, no filter.
    case graph
    /// Graph walk with the predicate evaluated on every candidate (filtered-out points are stepping stones).
    case graphFiltered
    /// Exact scan of the whole collection: cheaper than the graph at this size and ef.
    case exact
    /// Exact scan of the points that match a selective filter.
    case exactFiltered
}

/// One result: an internal id and its internal distance (smaller is nearer; see `Metric`).
public struct SearchHit: Sendable, Hashable {
    public var id: UInt32
    public var distance: Float
    public init(id: UInt32, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// Hits sorted nearest first, the strategy that produced them, and the distances it computed.
public struct SearchResult: Sendable {
    public var hits: [SearchHit]
    public var strategy: SearchStrategy
    public var distancesComputed: Int
}

/// A predicate over internal ids evaluated during a search, with the caller's estimate of how many
/// points match (from its payload index) and, optionally, the matching ids themselves (then an exact
/// search scans only those). Without an estimate the graph walk runs filtered.
public struct SearchFilter {
    public var matches: (UInt32) -> Bool
    public var estimatedMatches: Int?
    public var matchingIds: [UInt32]?
    public init(estimatedMatches: Int? = nil, matchingIds: [UInt32]? = nil, _ matches: @escaping (UInt32) -> Bool) {
        self.matches = matches
        self.estimatedMatches = estimatedMatches ?? matchingIds?.count
        self.matchingIds = matchingIds
    }
}

/// Errors of the index API.
public enum IndexError: Error, Equatable, Sendable {
    case dimensionMismatch(expected: Int, got: Int)
    case idOutOfRange(id: UInt32, capacity: Int)
    case notFound(id: UInt32)
    case nonFiniteValue
    case corruptImage(String)
    /// The address space for the index's arrays could not be reserved.
    case cannotReserve(bytes: Int)
}
