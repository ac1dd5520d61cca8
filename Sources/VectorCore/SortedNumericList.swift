/// One numeric value of one point in a field's range index.
struct NumericEntry: Comparable, Sendable {
    var key: NumericKey
    var id: UInt32

    static func < (a: NumericEntry, b: NumericEntry) -> Bool {
        a.key < b.key || (a.key == b.key && a.id < b.id)
    }
}

/// The (value, id) pairs of one field, sorted, for range queries: a list of
/// sorted chunks of at most `chunkLimit` entries (the layout of Python's
/// `sortedcontainers.SortedList`). Insert and remove cost a binary search and
/// a move within one chunk; a range is located with two binary searches and
/// counted in O(chunks between its ends).
///
/// Invariants (`_checkInvariants`): every chunk non-empty and sorted, chunks in
/// order, `maxes[c]` the last entry of chunk `c`, `count` the total.
struct SortedNumericList: Sendable {
    /// A chunk splits in two when it reaches this size.
    static let chunkLimit = 1_024

    /// A place in the list: chunk `chunk`, entry `index` (`(chunks.count, 0)` is the end).
    struct Position: Comparable {
        var chunk: Int
        var index: Int
        static func < (a: Position, b: Position) -> Bool {
            (a.chunk, a.index) < (b.chunk, b.index)
        }
    }

    private var chunks: [[NumericEntry]] = []
    private var maxes: [NumericEntry] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func insert(_ e: NumericEntry) {
        guard !chunks.isEmpty else {
            chunks = [[e]]
            maxes = [e]
            count = 1
            return
        }
        let c = Swift.min(maxes.partitionPoint { $0 < e }, chunks.count - 1)
        let i = chunks[c].partitionPoint { $0 < e }
        chunks[c].insert(e, at: i)
        maxes[c] = chunks[c][chunks[c].count - 1]
        count += 1
        if chunks[c].count >= Self.chunkLimit { split(c) }
    }

    /// Removes `e`; returns false if it was absent.
    @discardableResult
    mutating func remove(_ e: NumericEntry) -> Bool {
        let c = maxes.partitionPoint { $0 < e }
        guard c < chunks.count else { return false }
        let i = chunks[c].partitionPoint { $0 < e }
        guard i < chunks[c].count, chunks[c][i] == e else { return false }
        chunks[c].remove(at: i)
        count -= 1
        if chunks[c].isEmpty {
            chunks.remove(at: c)
            maxes.remove(at: c)
        } else {
            maxes[c] = chunks[c][chunks[c].count - 1]
        }
        return true
    }

    private mutating func split(_ c: Int) {
        let half = chunks[c].count / 2
        let tail = Array(chunks[c][half...])
        chunks[c].removeLast(chunks[c].count - half)
        maxes[c] = chunks[c][half - 1]
        chunks.insert(tail, at: c + 1)
        maxes.insert(tail[tail.count - 1], at: c + 1)
    }

    /// The first position whose key fails `before`, which must hold for a
    /// prefix of the list and fail for the rest.
    func firstPosition(where before: (NumericKey) -> Bool) -> Position {
        let c = maxes.partitionPoint { before($0.key) }
        guard c < chunks.count else { return Position(chunk: chunks.count, index: 0) }
        return Position(chunk: c, index: chunks[c].partitionPoint { before($0.key) })
    }

    /// The positions `lo..<hi` of the entries equal to `key`; their ids ascend.
    func equalRange(_ key: NumericKey) -> (Position, Position) {
        (firstPosition { $0 < key }, firstPosition { $0 <= key })
    }

    var start: Position { Position(chunk: 0, index: 0) }
    var end: Position { Position(chunk: chunks.count, index: 0) }

    /// Entries in `lo..<hi`; 0 when `hi <= lo`.
    func count(from lo: Position, to hi: Position) -> Int {
        guard lo < hi else { return 0 }
        if lo.chunk == hi.chunk { return hi.index - lo.index }
        var n = chunks[lo.chunk].count - lo.index + hi.index
        for c in (lo.chunk + 1)..<hi.chunk { n += chunks[c].count }
        return n
    }

    /// Calls `body` with the id of every entry in `lo..<hi`, in value order.
    func forEachId(from lo: Position, to hi: Position, _ body: (UInt32) -> Void) {
        guard lo < hi else { return }
        for c in lo.chunk...Swift.min(hi.chunk, chunks.count - 1) {
            let from = c == lo.chunk ? lo.index : 0
            let to = c == hi.chunk ? hi.index : chunks[c].count
            chunks[c].withUnsafeBufferPointer { buf in
                for i in from..<to { body(buf[i].id) }
            }
        }
    }

    func _checkInvariants() {
        precondition(chunks.count == maxes.count, "SortedNumericList: maxes out of step")
        var total = 0
        var previous: NumericEntry?
        for (c, chunk) in chunks.enumerated() {
            precondition(!chunk.isEmpty && chunk.count < Self.chunkLimit, "SortedNumericList: bad chunk size")
            precondition(maxes[c] == chunk[chunk.count - 1], "SortedNumericList: stale max")
            for e in chunk {
                if let previous { precondition(previous < e, "SortedNumericList: out of order") }
                previous = e
            }
            total += chunk.count
        }
        precondition(total == count, "SortedNumericList: count out of date")
    }
}

extension Array {
    /// The first index whose element fails `before`, which holds for a prefix
    /// of the array and fails for the rest (binary search).
    func partitionPoint(_ before: (Element) -> Bool) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if before(self[mid]) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
