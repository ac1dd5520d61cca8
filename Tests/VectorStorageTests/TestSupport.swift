import Foundation
import Testing
import VectorCore
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

/// The tests' seeded generator, with byte helpers.
typealias SeededGenerator = SplitMix64

extension SplitMix64 {
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
