import Foundation
import Testing
import VectorStorage

/// Runs `body` with a fresh directory path (not yet created) under the system temp
/// directory and removes everything there afterwards, whether `body` throws or not.
func withTemporaryDirectory<R>(_ name: String = #function, _ body: (String) throws -> R) throws -> R {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let root = FileManager.default.temporaryDirectory
        .appendingPathComponent("shoal-storage-tests-\(safe)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    return try body(root.path)
}

/// SplitMix64: a small, fast generator with a fixed seed, so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// Bytes drawn mostly from {0x00, 0x01, 0xFE, 0xFF} and a few others: the edge cases of
    /// escaping and prefix successors.
    mutating func edgyBytes(count: Int) -> [UInt8] {
        let alphabet: [UInt8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF]
        return (0..<count).map { _ in alphabet.randomElement(using: &self)! }
    }
}

extension Array where Element == UInt8 {
    init(_ string: String) { self = Array(string.utf8) }
}
