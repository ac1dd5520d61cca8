import CVectorKernels
import VectorCore

/// Node states, stored one byte per id.
enum NodeState: UInt8 {
    case empty = 0, live = 1, deleted = 2
}

/// The per-id memory of an index: one contiguous 64-byte aligned vector buffer, a flat array of level-0
/// link lists, and small per-node arrays (state, level, lock word, pointer to upper-level links).
///
/// Every array is reserved up front for `capacity` ids as address space only; pages are committed when
/// first written, so growing never moves memory and concurrent readers are never invalidated.
///
/// Link list layout (level 0 and each upper level): word 0 = count, then `maxLinks` neighbour ids.
/// Writers change a list only under its node's lock word and store with release; readers load with acquire.
final class NodeStore: @unchecked Sendable {
    let dimension: Int
    let capacity: Int
    /// Floats per stored vector (dimension rounded up to 16: 64-byte rows).
    let vectorStride: Int
    /// Words per level-0 list: 1 + 2M.
    let stride0: Int
    /// Words per upper-level list: 1 + M.
    let strideUpper: Int

    let vectors: UnsafeMutablePointer<Float>
    let links0: UnsafeMutablePointer<UInt32>
    let locks: UnsafeMutablePointer<UInt32>
    let levels: UnsafeMutablePointer<UInt8>
    let states: UnsafeMutablePointer<UInt8>
    /// Per node: address of a malloc'd block of `level * strideUpper` words, or 0.
    let upper: UnsafeMutablePointer<UInt64>
    /// Optional int8 copy of the rows: each `codeStride`-byte row holds `dimension` codes (zero padded to a
    /// multiple of 32), then at
    /// `codeMetaOffset` the row's scale and its squared norm (Float), so one row is one or few cache lines.
    let codes: UnsafeMutablePointer<Int8>?
    let codeStride: Int
    let codeMetaOffset: Int

    private let regions: [(UnsafeMutableRawPointer, Int)]

    /// Reserves every array; throws `IndexError.cannotReserve` (having released what it
    /// took) when the address space cannot be had. Sizes: `IndexFootprint`.
    init(dimension: Int, m: Int, capacity: Int, quantized: Bool) throws(IndexError) {
        precondition(dimension > 0 && capacity > 0 && capacity <= Int(UInt32.max))
        self.dimension = dimension
        self.capacity = capacity
        vectorStride = IndexFootprint.vectorStride(dimension: dimension)
        stride0 = 1 + 2 * m
        strideUpper = 1 + m
        codeMetaOffset = IndexFootprint.codeMetaOffset(dimension: dimension)
        codeStride = IndexFootprint.codeStride(dimension: dimension, quantized: quantized)
        let sizes = IndexFootprint.regionBytes(dimension: dimension, m: m, capacity: capacity, quantized: quantized)
        var raw: [UnsafeMutableRawPointer] = []
        for size in sizes {
            guard let p = shoal_reserve(size) else {
                for (p, n) in zip(raw, sizes) { shoal_unreserve(p, n) }
                throw IndexError.cannotReserve(bytes: sizes.reduce(0, +))
            }
            raw.append(p)
        }
        regions = Array(zip(raw, sizes))
        vectors = raw[0].bindMemory(to: Float.self, capacity: capacity * vectorStride)
        links0 = raw[1].bindMemory(to: UInt32.self, capacity: capacity * stride0)
        locks = raw[2].bindMemory(to: UInt32.self, capacity: capacity)
        levels = raw[3].bindMemory(to: UInt8.self, capacity: capacity)
        states = raw[4].bindMemory(to: UInt8.self, capacity: capacity)
        upper = raw[5].bindMemory(to: UInt64.self, capacity: capacity)
        codes = quantized ? raw[6].bindMemory(to: Int8.self, capacity: capacity * codeStride) : nil
    }

    /// Writes the int8 code of row `id` from its stored vector (no-op without a quantized copy).
    func encode(_ id: UInt32) {
        guard let codes else { return }
        let v = vector(id)
        var maxAbs: Float = 0
        var norm: Float = 0
        for i in 0..<dimension {
            maxAbs = max(maxAbs, abs(v[i]))
            norm += v[i] * v[i]
        }
        let scale = maxAbs > 0 ? maxAbs / 127 : 1
        let row = codes + Int(id) * codeStride
        for i in 0..<dimension { row[i] = Int8(max(-127, min(127, (v[i] / scale).rounded()))) }
        let meta = UnsafeMutableRawPointer(row + codeMetaOffset)
        meta.storeBytes(of: scale, as: Float.self)
        meta.storeBytes(of: norm, toByteOffset: 4, as: Float.self)
    }

    deinit {
        for i in 0..<capacity where upper[i] != 0 {
            UnsafeMutableRawPointer(bitPattern: UInt(upper[i]))?.deallocate()
        }
        for (p, n) in regions { shoal_unreserve(p, n) }
    }

    /// The (possibly normalised) stored vector of `id`; valid while the id is not reclaimed.
    @inline(__always)
    func vector(_ id: UInt32) -> UnsafePointer<Float> {
        UnsafePointer(vectors + Int(id) &* vectorStride)
    }

    @inline(__always)
    func mutableVector(_ id: UInt32) -> UnsafeMutablePointer<Float> {
        vectors + Int(id) &* vectorStride
    }

    /// The link list of `id` on `level` (word 0 = count). The node must have that level.
    @inline(__always)
    func links(_ id: UInt32, level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return links0 + Int(id) &* stride0 }
        let base = UnsafeMutablePointer<UInt32>(bitPattern: UInt(upper[Int(id)]))!
        return base + (level - 1) * strideUpper
    }

    @inline(__always)
    func maxLinks(level: Int) -> Int { level == 0 ? stride0 - 1 : strideUpper - 1 }

    @inline(__always)
    func state(_ id: UInt32) -> NodeState {
        NodeState(rawValue: shoal_load_acquire_u8(states + Int(id))) ?? .empty
    }

    @inline(__always)
    func setState(_ id: UInt32, _ s: NodeState) { shoal_store_release_u8(states + Int(id), s.rawValue) }

    @inline(__always)
    func isLive(_ id: UInt32) -> Bool { shoal_load_acquire_u8(states + Int(id)) == NodeState.live.rawValue }

    @inline(__always) func lock(_ id: UInt32) { shoal_spin_lock(locks + Int(id)) }
    @inline(__always) func unlock(_ id: UInt32) { shoal_spin_unlock(locks + Int(id)) }

    /// Allocates zeroed upper-level lists for `level` levels (replacing none: the caller frees first).
    func allocateUpper(_ id: UInt32, level: Int) {
        guard level > 0 else { upper[Int(id)] = 0; return }
        let words = level * strideUpper
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: words)
        p.initialize(repeating: 0, count: words)
        upper[Int(id)] = UInt64(UInt(bitPattern: p))
    }

    func freeUpper(_ id: UInt32) {
        if upper[Int(id)] != 0 {
            UnsafeMutableRawPointer(bitPattern: UInt(upper[Int(id)]))?.deallocate()
            upper[Int(id)] = 0
        }
    }

    /// Writes the int8 code of a query (zero padded to `length`) and returns its scale.
    func quantize(_ q: UnsafePointer<Float>, into out: UnsafeMutablePointer<Int8>, length: Int) -> Float {
        var maxAbs: Float = 0
        for i in 0..<dimension { maxAbs = max(maxAbs, abs(q[i])) }
        let scale = maxAbs > 0 ? maxAbs / 127 : 1
        for i in 0..<dimension { out[i] = Int8(max(-127, min(127, (q[i] / scale).rounded()))) }
        for i in dimension..<length { out[i] = 0 }
        return scale
    }

    /// Reads a list's neighbours (acquire) into an array.
    func neighbours(_ id: UInt32, level: Int) -> [UInt32] {
        let list = links(id, level: level)
        let n = Int(shoal_load_acquire_u32(list))
        return (0..<n).map { shoal_load_acquire_u32(list + 1 + $0) }
    }

    /// Replaces a list (caller holds the node's lock).
    func setNeighbours(_ id: UInt32, level: Int, _ ids: some Collection<UInt32>) {
        let list = links(id, level: level)
        var i = 0
        for v in ids {
            shoal_store_release_u32(list + 1 + i, v)
            i += 1
        }
        shoal_store_release_u32(list, UInt32(i))
    }

    /// Bytes used per stored vector by this layout (upper levels counted at their expected share).
    func bytesPerVector(m: Int) -> Double {
        let expectedUpper = Double(strideUpper * 4) / Double(m - 1) + 8  // one list per 1/(M-1) levels + malloc header
        return Double(vectorStride * 4 + stride0 * 4 + 4 + 1 + 1 + 8 + codeStride) + expectedUpper
    }
}
