import CVectorKernels
import VectorCore

/// The byte image of an index: a header, then raw copies of the per-id arrays, then upper-level lists,
/// then a 64-bit checksum of everything before it. The header is little-endian; the sections and the
/// checksum are raw host-order memory (loading is a few bulk copies), so an image loads only on a host of
/// the byte order that wrote it (every target today is little-endian).
///
/// Header: magic "SHOALHNS", format u32, dimension u32, metric u8 (0 l2, 1 cosine,
/// 2 ip), int8 copy u8 (0 auto, 1 on, 2 off), quantized traversal u8 (0 auto, 1 on, 2 off), m u32, efConstruction u32, ef u32, seed u64, capacity u64, idLimit u32, entry u64,
/// graph cost estimate u32. The int8 copy is rebuilt from the vectors on load. Sections: states [idLimit] u8, levels [idLimit] u8, vectors
/// [idLimit × vectorStride] f32, level-0 lists [idLimit × (1 + 2M)] u32, then for each id with level > 0,
/// `level × (1 + M)` u32.
extension HNSWIndex {
    static let imageMagic: [UInt8] = Array("SHOALHNS".utf8)
    static let imageFormat: UInt32 = 1

    /// The graph image with its vectors. Call with no concurrent writers (searches are fine).
    public func serialize() -> [UInt8] {
        maintenance.withLock {
            let limit = idLimit
            var out: [UInt8] = []
            out.reserveCapacity(96 + limit * (2 + store.vectorStride * 4 + store.stride0 * 4 + 8) + 8)
            out += Self.imageMagic
            out.appendLE(Self.imageFormat)
            out.appendLE(UInt32(dimension))
            out.append(metric == .l2 ? 0 : metric == .cosine ? 1 : 2)
            out.append(params.quantizedScan == nil ? 0 : params.quantizedScan! ? 1 : 2)
            out.append(params.quantizedTraversal == nil ? 0 : params.quantizedTraversal! ? 1 : 2)
            out.appendLE(UInt32(params.m))
            out.appendLE(UInt32(params.efConstruction))
            out.appendLE(UInt32(params.ef))
            out.appendLE(params.seed)
            out.appendLE(UInt64(capacity))
            out.appendLE(UInt32(limit))
            out.appendLE(entry.load(ordering: .acquiring))
            out.appendLE(graphCostPerEf.load(ordering: .relaxed))
            out.appendRaw(store.states, count: limit)
            out.appendRaw(store.levels, count: limit)
            out.appendRaw(store.vectors, count: limit * store.vectorStride)
            out.appendRaw(store.links0, count: limit * store.stride0)
            for id in 0..<limit where store.levels[id] > 0 && store.state(UInt32(id)) != .empty {
                out.appendRaw(store.links(UInt32(id), level: 1), count: Int(store.levels[id]) * store.strideUpper)
            }
            out.appendLE(imageChecksum(out))
            return out
        }
    }

    /// Loads an index from `serialize()` output. Throws `corruptImage` on a bad magic, format or checksum.
    public convenience init(image: [UInt8]) throws {
        var r = ImageReader(bytes: image)
        guard image.count >= 8 + 8, Array(image[0..<8]) == Self.imageMagic else { throw IndexError.corruptImage("bad magic") }
        let stored: UInt64 = image.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: image.count - 8, as: UInt64.self) }
        guard stored == imageChecksum(image[0..<(image.count - 8)]) else { throw IndexError.corruptImage("checksum mismatch") }
        r.offset = 8
        guard try r.read(UInt32.self) == Self.imageFormat else { throw IndexError.corruptImage("unknown format") }
        let dimension = Int(try r.read(UInt32.self))
        let metricCode = try r.read(UInt8.self)
        guard metricCode <= 2 else { throw IndexError.corruptImage("unknown metric") }
        let scanCode = try r.read(UInt8.self)
        let traversal = try r.read(UInt8.self)
        let metric: Metric = metricCode == 0 ? .l2 : metricCode == 1 ? .cosine : .innerProduct
        let m = Int(try r.read(UInt32.self))
        let efc = Int(try r.read(UInt32.self))
        let ef = Int(try r.read(UInt32.self))
        let seed = try r.read(UInt64.self)
        let capacity = Int(try r.read(UInt64.self))
        let limit = Int(try r.read(UInt32.self))
        let entryWord = try r.read(UInt64.self)
        let cost = try r.read(UInt32.self)
        guard dimension > 0, m >= 2, m <= 128, limit <= capacity else { throw IndexError.corruptImage("bad header") }
        let params = HNSWParameters(m: m, efConstruction: efc, ef: ef, seed: seed,
                                    quantizedScan: scanCode == 0 ? nil : scanCode == 1, quantizedTraversal: traversal == 0 ? nil : traversal == 1)
        try self.init(dimension: dimension, metric: metric, params: params, capacity: capacity)
        try r.copy(into: store.states, count: limit)
        try r.copy(into: store.levels, count: limit)
        try r.copy(into: store.vectors, count: limit * store.vectorStride)
        try r.copy(into: store.links0, count: limit * store.stride0)
        var live = 0, dead = 0
        for id in 0..<limit {
            let state = store.states[id]
            guard state <= 2 else { throw IndexError.corruptImage("bad state") }
            if state != NodeState.empty.rawValue { store.encode(UInt32(id)) }
            if state == NodeState.live.rawValue { live += 1 } else if state == NodeState.deleted.rawValue { dead += 1 }
            let level = Int(store.levels[id])
            if level > 0 && state != NodeState.empty.rawValue {
                store.allocateUpper(UInt32(id), level: level)
                try r.copy(into: store.links(UInt32(id), level: 1), count: level * store.strideUpper)
            }
        }
        guard r.offset == image.count - 8 else { throw IndexError.corruptImage("trailing bytes") }
        liveCount.store(live, ordering: .relaxed)
        deletedCount.store(dead, ordering: .relaxed)
        highWater.store(UInt32(limit), ordering: .releasing)
        graphCostPerEf.store(cost, ordering: .relaxed)
        entry.store(entryWord, ordering: .releasing)
    }

    /// The int8 dot product kernel (tests compare the SIMD one with the scalar reference).
    static func _dotInt8(_ a: [Int8], _ b: [Int8], simd: Bool) -> Int32 {
        let f = shoal_select_dot_i8i8(simd ? 1 : 0)!
        return a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { f(x.baseAddress!, $0.baseAddress!, min(a.count, b.count)) } }
    }

    /// The kernel family in use: "avx2+fma" or "scalar".
    public static func kernelName(allowSIMD: Bool) -> String {
        allowSIMD && shoal_cpu_has_avx2_fma() != 0 ? "avx2+fma" : "scalar"
    }
}

/// A 64-bit multiply-xor hash over 8-byte words (tail bytes folded in one at a time).
func imageChecksum(_ bytes: some Collection<UInt8>) -> UInt64 {
    let arr = Array(bytes)
    return arr.withUnsafeBytes { raw in
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        let words = raw.count / 8
        for i in 0..<words {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3
            h ^= h >> 29
        }
        for i in (words * 8)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x0000_0100_0000_01B3 }
        return h
    }
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendRaw<T>(_ p: UnsafeMutablePointer<T>, count: Int) {
        append(contentsOf: UnsafeRawBufferPointer(start: p, count: count * MemoryLayout<T>.stride))
    }
}

struct ImageReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard offset + n <= bytes.count else { throw IndexError.corruptImage("truncated") }
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += n
        return T(littleEndian: v)
    }

    mutating func copy<T>(into p: UnsafeMutablePointer<T>, count: Int) throws {
        let n = count * MemoryLayout<T>.stride
        guard offset + n <= bytes.count else { throw IndexError.corruptImage("truncated") }
        bytes.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
        offset += n
    }
}
