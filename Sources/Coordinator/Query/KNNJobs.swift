import Foundation
import VectorCore

/// The arithmetic of the users' jobs (Classify, EvaluateClassifier, AnomalyScore),
/// apart from the searches that feed it: one definition each, which the tests
/// compare with brute force.

/// A class label: a string or an int value of the label field. Ordered strings
/// first, then ints, each in its natural order.
public enum Label: Hashable, Comparable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)

    /// The label a point's `field` holds; nil if it lacks the field. INVALID_ARGUMENT
    /// for any other kind of value.
    public init?(_ value: MetadataValue?, field: String, point: String) throws(ShoalError) {
        switch value {
        case nil: return nil
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case let other?:
            throw ShoalError(.invalidArgument,
                "label field \"\(field)\" of point \"\(point)\" holds a \(other.kindName); labels are strings or ints")
        }
    }

    public var metadataValue: MetadataValue {
        switch self {
        case .string(let s): .string(s)
        case .int(let i): .int(i)
        }
    }

    public var description: String {
        switch self {
        case .string(let s): s
        case .int(let i): "\(i)"
        }
    }

    public static func < (a: Label, b: Label) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): x < y
        case (.int(let x), .int(let y)): x < y
        case (.string, .int): true
        case (.int, .string): false
        }
    }
}

/// How neighbours' labels are counted.
public enum VoteRule: Sendable {
    /// One vote each; a label's score is its share of the votes.
    case majority
    /// Weight 1 / (distance + 1e-6) each; a label's score is its share of the weight.
    /// Needs distances that are never negative (cosine, L2).
    case distanceWeighted

    static let epsilon = 1e-6
}

/// The outcome of one vote.
public struct KNNVote: Sendable, Equatable {
    public struct Score: Sendable, Equatable {
        public var label: Label
        public var score: Double
        public var votes: UInt32
    }

    /// The winning label.
    public var label: Label
    /// Every label that got a vote, best first (ties in the order of their nearest neighbour).
    public var scores: [Score]

    /// Votes over `neighbours` (nearest first; a nil label: the neighbour lacks the
    /// field and does not vote). The highest score wins; among tied labels, the one
    /// whose nearest neighbour is nearest. Nil if no neighbour has a label.
    public init?(_ neighbours: [(label: Label?, distance: Double)], rule: VoteRule) {
        var weight: [Label: Double] = [:]
        var votes: [Label: UInt32] = [:]
        var firstSeen: [Label: Int] = [:]
        for (rank, neighbour) in neighbours.enumerated() {
            guard let label = neighbour.label else { continue }
            let w = switch rule {
            case .majority: 1.0
            case .distanceWeighted: 1.0 / (max(neighbour.distance, 0) + VoteRule.epsilon)
            }
            weight[label, default: 0] += w
            votes[label, default: 0] += 1
            if firstSeen[label] == nil { firstSeen[label] = rank }
        }
        guard !weight.isEmpty else { return nil }
        let total = weight.values.reduce(0, +)
        let ranked = weight.keys.sorted { a, b in
            weight[a]! != weight[b]! ? weight[a]! > weight[b]! : firstSeen[a]! < firstSeen[b]!
        }
        label = ranked[0]
        scores = ranked.map { Score(label: $0, score: weight[$0]! / total, votes: votes[$0]!) }
    }
}

/// Leave-one-out neighbour lists and score distributions.
public enum LeaveOneOut {
    /// The first `k` of `hits` (asked for k + 1, nearest first) other than the point
    /// `id` itself; without it among them, the first k.
    public static func neighbours<Hit>(_ hits: [Hit], excluding id: String, k: Int, id idOf: (Hit) -> String) -> [Hit] {
        var kept = hits
        if let own = kept.firstIndex(where: { idOf($0) == id }) { kept.remove(at: own) }
        return Array(kept.prefix(k))
    }

    /// The p-th percentile (0...100) of `values` as numpy.percentile computes it by
    /// default: linear interpolation between the closest ranks. 0 for no values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard let last = sorted.indices.last else { return 0 }
        let position = p / 100 * Double(last)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, last)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    /// The `count` ids of smallest stable hash (FNV-1a 64 of the bytes): the same
    /// sample every time, spread over the shards.
    public static func sample(_ ids: [String], count: Int) -> Set<String> {
        Set(stableOrder(ids, id: { $0 }).prefix(count))
    }

    /// `items` ordered by the stable hash of their ids (then the ids): the order an
    /// evaluation pages through, the same on every call.
    public static func stableOrder<T>(_ items: [T], id: (T) -> String) -> [T] {
        items.map { (fnv1a64(id($0)), id($0), $0) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
    }

    static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}

/// The mean of a set of vectors (each unit-normalised first for cosine) and the
/// distance to it in the collection's convention: 1 − cosine similarity, the squared
/// L2 distance, or the negated inner product.
public struct Centroid: Sendable {
    public let metric: Metric
    private(set) var sum: [Double]
    private(set) var count: Int

    public init(metric: Metric, dimension: Int) {
        self.metric = metric
        sum = [Double](repeating: 0, count: dimension)
        count = 0
    }

    public mutating func add(_ vector: [Float]) {
        let v = prepared(vector)
        for i in sum.indices { sum[i] += v[i] }
        count += 1
    }

    /// The distance from `vector` to the mean; `leavingOut`: to the mean of the
    /// others (the vector was added). Nil when that mean is of no vectors.
    public func distance(_ vector: [Float], leavingOut: Bool = false) -> Double? {
        let n = count - (leavingOut ? 1 : 0)
        guard n > 0 else { return nil }
        let mean = leavingOut ? zip(sum, prepared(vector)).map { ($0 - $1) / Double(n) } : sum.map { $0 / Double(n) }
        let x = vector.map(Double.init)
        switch metric {
        case .l2:
            return zip(x, mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        case .innerProduct:
            return -zip(x, mean).reduce(0) { $0 + $1.0 * $1.1 }
        case .cosine:
            let dot = zip(x, mean).reduce(0) { $0 + $1.0 * $1.1 }
            let norms = (x.reduce(0) { $0 + $1 * $1 } * mean.reduce(0) { $0 + $1 * $1 }).squareRoot()
            return norms == 0 ? 1 : 1 - dot / norms
        }
    }

    private func prepared(_ vector: [Float]) -> [Double] {
        let v = vector.map(Double.init)
        guard metric == .cosine else { return v }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm == 0 ? v : v.map { $0 / norm }
    }
}

/// The tallies of a leave-one-out evaluation.
public struct ClassifierTally: Sendable {
    /// (actual, predicted) → points.
    public private(set) var pairs: [Pair: UInt64] = [:]
    public private(set) var skipped: UInt64 = 0

    public struct Pair: Hashable, Sendable {
        public var actual: Label
        public var predicted: Label
        public init(actual: Label, predicted: Label) {
            self.actual = actual
            self.predicted = predicted
        }
    }

    public init() {}

    public mutating func add(actual: Label, predicted: Label, count: UInt64 = 1) {
        pairs[Pair(actual: actual, predicted: predicted), default: 0] += count
    }
    public mutating func skip(_ count: UInt64 = 1) { skipped += count }

    /// Every pair counted, in label order (to carry to the next page).
    public var counted: [(pair: Pair, count: UInt64)] {
        pairs.sorted { ($0.key.actual, $0.key.predicted) < ($1.key.actual, $1.key.predicted) }.map { ($0.key, $0.value) }
    }

    public var evaluated: UInt64 { pairs.values.reduce(0, +) }
    public var correct: UInt64 { pairs.filter { $0.key.actual == $0.key.predicted }.values.reduce(0, +) }
    public var accuracy: Double { evaluated == 0 ? 0 : Double(correct) / Double(evaluated) }

    /// Per label (every label seen as actual or predicted), in label order.
    public var perLabel: [(label: Label, precision: Double, recall: Double, support: UInt64)] {
        let labels = Set(pairs.keys.flatMap { [$0.actual, $0.predicted] }).sorted()
        return labels.map { label in
            let hits = pairs[Pair(actual: label, predicted: label)] ?? 0
            let predicted = pairs.filter { $0.key.predicted == label }.values.reduce(0, +)
            let support = pairs.filter { $0.key.actual == label }.values.reduce(0, +)
            return (label, predicted == 0 ? 0 : Double(hits) / Double(predicted), support == 0 ? 0 : Double(hits) / Double(support), support)
        }
    }

    /// The `top` most frequent off-diagonal pairs, most frequent first (ties in label order).
    public func confusions(top: Int) -> [(pair: Pair, count: UInt64)] {
        pairs.filter { $0.key.actual != $0.key.predicted }
            .sorted { $0.value != $1.value ? $0.value > $1.value : ($0.key.actual, $0.key.predicted) < ($1.key.actual, $1.key.predicted) }
            .prefix(top).map { ($0.key, $0.value) }
    }
}
