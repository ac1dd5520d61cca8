/// What an HNSW index reserves up front: the one formula the index allocates by,
/// the node admits replicas by, and the coordinator plans collections by.
///
/// The index reserves address space (not memory) for `capacity` ids when it is
/// made: a 64-byte aligned row per vector (the dimension rounded up to 16 floats),
/// a level-0 link list of `1 + 2m` words, a lock word, a level byte, a state byte,
/// an upper-level pointer, and, with int8 codes, a code row (the dimension rounded
/// up to 32, plus 8 bytes of scale and norm, rounded up to 16). Pages are committed
/// only as ids are written.
public enum IndexFootprint {
    /// Whether an index keeps int8 codes when its parameters do not say: from 256
    /// dimensions up, where exact scans are memory-bound.
    public static func quantizedByDefault(dimension: Int) -> Bool { dimension >= 256 }

    /// Floats per stored vector row.
    public static func vectorStride(dimension: Int) -> Int { (dimension + 15) & ~15 }

    /// Offset of the scale and norm in a code row.
    public static func codeMetaOffset(dimension: Int) -> Int { (dimension + 31) & ~31 }

    /// Bytes per code row (0 without codes).
    public static func codeStride(dimension: Int, quantized: Bool) -> Int {
        quantized ? (codeMetaOffset(dimension: dimension) + 8 + 15) & ~15 : 0
    }

    /// The sizes of the regions an index of `capacity` ids reserves, in bytes.
    public static func regionBytes(dimension: Int, m: Int, capacity: Int, quantized: Bool) -> [Int] {
        var sizes = [capacity * vectorStride(dimension: dimension) * 4, capacity * (1 + 2 * m) * 4, capacity * 4, capacity, capacity, capacity * 8]
        if quantized { sizes.append(capacity * codeStride(dimension: dimension, quantized: true)) }
        return sizes
    }

    /// Bytes of address space an index of `capacity` ids reserves.
    public static func reservedBytes(dimension: Int, m: Int, capacity: Int, quantized: Bool) -> Int {
        regionBytes(dimension: dimension, m: m, capacity: capacity, quantized: quantized).reduce(0, +)
    }
}
