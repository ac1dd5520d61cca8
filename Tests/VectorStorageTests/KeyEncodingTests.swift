import Testing
import VectorStorage

@Suite struct KeyEncodingTests {
    @Test func prefixSuccessorIncrementsTheLastByteBelow0xFF() {
        #expect(KeyEncoding.prefixSuccessor([0x01]) == [0x02])
        #expect(KeyEncoding.prefixSuccessor([0x01, 0x02]) == [0x01, 0x03])
        #expect(KeyEncoding.prefixSuccessor([0x01, 0xFF]) == [0x02])
        #expect(KeyEncoding.prefixSuccessor([0x01, 0xFE, 0xFF, 0xFF]) == [0x01, 0xFF])
        #expect(KeyEncoding.prefixSuccessor([0xFF, 0xFF]) == nil)
        #expect(KeyEncoding.prefixSuccessor([]) == nil)
    }

    /// Oracle: a key starts with the prefix iff prefix <= key < successor.
    @Test func prefixSuccessorBoundsExactlyThePrefixedKeys() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<2_000 {
            let prefix = rng.edgyBytes(count: Int.random(in: 0...3, using: &rng))
            let key = rng.edgyBytes(count: Int.random(in: 0...5, using: &rng))
            let startsWith = key.starts(with: prefix)
            let atLeastPrefix = !key.lexicographicallyPrecedes(prefix)
            let belowSuccessor = KeyEncoding.prefixSuccessor(prefix).map { key.lexicographicallyPrecedes($0) } ?? true
            #expect(startsWith == (atLeastPrefix && belowSuccessor), "prefix \(prefix) key \(key)")
        }
    }

    @Test func integersEncodeBigEndianAndKeepOrder() throws {
        var key = KeyEncoder(tag: 0x07)
        key.append(UInt32(0x0102_0304))
        key.append(UInt64(0x0A0B_0C0D_0E0F_1011))
        #expect(key.bytes == [0x07, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11])

        var rng = SeededGenerator(seed: 12)
        for _ in 0..<1_000 {
            let (a, b) = (UInt64.random(in: .min ... .max, using: &rng) >> UInt64.random(in: 0...63, using: &rng),
                          UInt64.random(in: .min ... .max, using: &rng) >> UInt64.random(in: 0...63, using: &rng))
            var ka = KeyEncoder(), kb = KeyEncoder()
            ka.append(a)
            kb.append(b)
            #expect(ka.bytes.lexicographicallyPrecedes(kb.bytes) == (a < b))

            let (x, y) = (Int64(bitPattern: a), Int64(bitPattern: b))
            var kx = KeyEncoder(), ky = KeyEncoder()
            kx.append(x)
            ky.append(y)
            #expect(kx.bytes.lexicographicallyPrecedes(ky.bytes) == (x < y))
            var decoder = KeyDecoder(kx.bytes)
            #expect(try decoder.readInt64() == x)
        }
    }

    /// Escaped components compare like their raw bytes, whatever component follows.
    @Test func escapedComponentsKeepOrderWhateverFollows() throws {
        var rng = SeededGenerator(seed: 13)
        for _ in 0..<3_000 {
            let a = rng.edgyBytes(count: Int.random(in: 0...4, using: &rng))
            let b = rng.edgyBytes(count: Int.random(in: 0...4, using: &rng))
            guard a != b else { continue }
            var ka = KeyEncoder(tag: 1), kb = KeyEncoder(tag: 1)
            ka.append(escaped: a)
            ka.append(raw: rng.edgyBytes(count: 3))
            kb.append(escaped: b)
            kb.append(raw: rng.edgyBytes(count: 3))
            #expect(ka.bytes.lexicographicallyPrecedes(kb.bytes) == a.lexicographicallyPrecedes(b), "\(a) vs \(b)")
        }
    }

    @Test func componentsRoundTrip() throws {
        var rng = SeededGenerator(seed: 14)
        for _ in 0..<500 {
            let raw = rng.edgyBytes(count: Int.random(in: 0...6, using: &rng))
            let text = String(decoding: rng.bytes(count: 5).map { $0 % 0x60 }, as: UTF8.self) + "é\u{0}x"
            let n32 = UInt32.random(in: .min ... .max, using: &rng)
            let n64 = UInt64.random(in: .min ... .max, using: &rng)
            var key = KeyEncoder(tag: 0x42)
            key.append(text)
            key.append(n32)
            key.append(escaped: raw)
            key.append(lengthPrefixed: raw)
            key.append(n64)
            key.append(raw: [9, 9])

            var decoder = KeyDecoder(key.bytes)
            #expect(try decoder.readTag() == 0x42)
            #expect(try decoder.readString() == text)
            #expect(try decoder.readUInt32() == n32)
            #expect(try decoder.readEscaped() == raw)
            #expect(try decoder.readLengthPrefixed() == raw)
            #expect(try decoder.readUInt64() == n64)
            #expect(decoder.readRest() == [9, 9])
            #expect(decoder.isAtEnd)
        }
    }

    @Test func stringPrefixMatchesKeysWhoseComponentStartsWithIt() {
        var prefix = KeyEncoder(tag: 3)
        prefix.append(stringPrefix: "fa")
        for (name, matches) in [("face", true), ("fa", true), ("f", false), ("fb", false), ("fa\u{0}", true)] {
            var key = KeyEncoder(tag: 3)
            key.append(name)
            #expect(key.bytes.starts(with: prefix.bytes) == matches, "\(name)")
        }
    }

    @Test func malformedKeysThrowCorruption() {
        var short = KeyDecoder([1, 2, 3])
        #expect(throws: StorageError(.corruption, "key too short: need 4 bytes at 0, have 3")) { try short.readUInt32() }
        var unterminated = KeyDecoder([0x61, 0x62])
        #expect { try unterminated.readEscaped() } throws: { ($0 as? StorageError)?.kind == .corruption }
        var badEscape = KeyDecoder([0x61, 0x00, 0x05])
        #expect { try badEscape.readEscaped() } throws: { ($0 as? StorageError)?.kind == .corruption }
    }
}
