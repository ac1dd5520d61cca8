import Foundation
import ShoalProto
import ShoalRPC
import VectorCore

/// Classify, EvaluateClassifier and AnomalyScore: searches (and, for the stored
/// points a job runs over, one scan of each shard's in-sync replica) fanned out as
/// any other read, each search in a read slot of its own against the placement of
/// the moment; the arithmetic is `KNNJobs`.
extension VectorStoreService {
    static let maxJobK: UInt32 = 1_000
    static let maxAnomalyVectors = 1_000
    static let defaultAnomalySample: UInt32 = 1_000
    /// Searches per SearchBatch a job sends.
    static let jobBatch = 64

    func classify(_ request: Shoal_V1_ClassifyRequest, deadline: ContinuousClock.Instant) async throws -> Shoal_V1_ClassifyResponse {
        let config = try jobConfig(request.collection)
        let rule = try voteRule(request.vote, metric: config.metric)
        guard !request.labelField.isEmpty else { throw ShoalError(.invalidArgument, "label_field is required") }
        let k = try jobK(request.k)
        let leaveOut = request.excludeID.isEmpty ? nil : request.excludeID
        let search = searchRequest(request.collection, vector: request.vector, k: k + (leaveOut == nil ? 0 : 1),
                                   filter: request.hasFilter ? request.filter : nil, exact: request.exact)
        let reply = try await read { state in try await self.search(try self.plan(search, state: state), deadline: deadline) }
        let hits = leaveOut.map { LeaveOneOut.neighbours(reply.hits, excluding: $0, k: Int(k), id: \.id) } ?? reply.hits
        try Self.checkEnough(hits.count, k: k)
        guard let vote = try Self.vote(hits, field: request.labelField, rule: rule) else {
            throw ShoalError(.failedPrecondition, "none of the \(hits.count) neighbours has the label field \"\(request.labelField)\"")
        }
        return .with {
            $0.label = vote.label.metadataValue.proto
            $0.scores = vote.scores.map { score in
                .with {
                    $0.label = score.label.metadataValue.proto
                    $0.score = score.score
                    $0.votes = score.votes
                }
            }
            $0.neighbors = hits
        }
    }

    func evaluateClassifier(_ request: Shoal_V1_EvaluateClassifierRequest, deadline: ContinuousClock.Instant) async throws -> Shoal_V1_EvaluateClassifierResponse {
        let config = try jobConfig(request.collection)
        let rule = try voteRule(request.vote, metric: config.metric)
        guard !request.labelField.isEmpty else { throw ShoalError(.invalidArgument, "label_field is required") }
        let k = try jobK(request.k)
        guard request.pageSize <= Self.maxEvaluationPage else {
            throw ShoalError(.invalidArgument, "page_size is at most \(Self.maxEvaluationPage), got \(request.pageSize)")
        }
        let paged = request.pageSize > 0
        var tally = try Self.carried(request)
        let filter = request.hasFilter ? request.filter : nil
        // Paged: the points' ids and metadata now, each page's vectors when it runs.
        let points = try await storedPoints(request.collection, filter: filter, includeVector: !paged, deadline: deadline)
        guard !points.isEmpty else { throw ShoalError(.failedPrecondition, "no stored point of \(request.collection) matches the filter") }
        let sample = request.sample == 0 ? nil : LeaveOneOut.sample(points.map(\.id), count: Int(request.sample))
        let chosen = LeaveOneOut.stableOrder(points.filter { sample?.contains($0.id) ?? true }, id: \.id)
        guard chosen.contains(where: { $0.metadata[request.labelField] != nil }) else {
            throw ShoalError(.failedPrecondition, "no stored point evaluated has the label field \"\(request.labelField)\"")
        }
        let start = try Self.pageStart(request.pageToken, total: chosen.count)
        let end = paged ? min(start + Int(request.pageSize), chosen.count) : chosen.count
        var page = Array(chosen[start..<end])
        if paged {
            page = try await fetchPoints(page.map(\.id), collection: request.collection, deadline: deadline)
            tally.skip(UInt64(end - start - page.count))  // deleted since the scan
        }
        var asked: [(actual: Label, point: Shoal_V1_Point, search: Shoal_V1_SearchRequest)] = []
        for point in page {
            guard let actual = try Self.label(point.metadata, request.labelField, of: point.id) else {
                tally.skip()
                continue
            }
            var scope = filter
            if !request.groupField.isEmpty {
                guard let group = point.metadata[request.groupField] else {
                    tally.skip()
                    continue
                }
                scope = Self.allOf(filter, Self.equals(request.groupField, group))
            }
            asked.append((actual, point, searchRequest(request.collection, vector: point.vector, k: k + 1, filter: scope, exact: request.exact)))
        }
        for start in stride(from: 0, to: asked.count, by: Self.jobBatch) {
            let chunk = asked[start..<min(start + Self.jobBatch, asked.count)]
            let replies = try await searches(chunk.map(\.search), deadline: deadline)
            for (item, reply) in zip(chunk, replies) {
                let neighbours = LeaveOneOut.neighbours(reply.hits, excluding: item.point.id, k: Int(k), id: \.id)
                guard neighbours.count == Int(k), let vote = try Self.vote(neighbours, field: request.labelField, rule: rule) else {
                    tally.skip()
                    continue
                }
                tally.add(actual: item.actual, predicted: vote.label)
            }
        }
        let top = request.topConfusions == 0 ? 10 : Int(request.topConfusions)
        return .with { reply in
            reply.evaluated = tally.evaluated
            reply.correct = tally.correct
            reply.accuracy = tally.accuracy
            reply.skipped = tally.skipped
            reply.perLabel = tally.perLabel.map { row in
                .with {
                    $0.label = row.label.metadataValue.proto
                    $0.precision = row.precision
                    $0.recall = row.recall
                    $0.support = row.support
                }
            }
            reply.confusions = tally.confusions(top: top).map { Self.confusion($0.pair, $0.count) }
            reply.total = UInt64(chosen.count)
            if paged {
                reply.tally = tally.counted.map { Self.confusion($0.pair, $0.count) }
                if end < chosen.count { reply.nextPageToken = Self.pageToken(end) }
            }
        }
    }

    /// Points an evaluation page holds at most (one Get).
    static let maxEvaluationPage: UInt32 = 10_000

    private static func confusion(_ pair: ClassifierTally.Pair, _ count: UInt64) -> Shoal_V1_Confusion {
        .with {
            $0.actual = pair.actual.metadataValue.proto
            $0.predicted = pair.predicted.metadataValue.proto
            $0.count = count
        }
    }

    /// What the previous pages counted (passed back by the caller).
    private static func carried(_ request: Shoal_V1_EvaluateClassifierRequest) throws(ShoalError) -> ClassifierTally {
        var tally = ClassifierTally()
        for (i, row) in request.tally.enumerated() {
            let place = "tally[\(i)]"
            guard let actual = try Label(MetadataValue(proto: row.actual, context: place), field: "actual", point: place),
                  let predicted = try Label(MetadataValue(proto: row.predicted, context: place), field: "predicted", point: place) else {
                throw ShoalError(.invalidArgument, "\(place): a label is missing")
            }
            tally.add(actual: actual, predicted: predicted, count: row.count)
        }
        tally.skip(request.skipped)
        return tally
    }

    private static func pageToken(_ offset: Int) -> Data {
        withUnsafeBytes(of: UInt64(offset).bigEndian) { Data($0) }
    }

    private static func pageStart(_ token: Data, total: Int) throws(ShoalError) -> Int {
        if token.isEmpty { return 0 }
        guard token.count == 8 else { throw ShoalError(.invalidArgument, "page_token is not one an evaluation returned") }
        let offset = token.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard offset <= UInt64(total) else {
            throw ShoalError(.invalidArgument, "page_token points past the \(total) points chosen (the collection shrank, or the token is not this evaluation's)")
        }
        return Int(offset)
    }

    /// The points with these ids that exist, with vector and metadata, in that order.
    private func fetchPoints(_ ids: [String], collection: String, deadline: ContinuousClock.Instant) async throws -> [Shoal_V1_Point] {
        let request = Shoal_V1_GetRequest.with {
            $0.collection = collection
            $0.ids = ids
            $0.includeVector = true
            $0.includeMetadata = true
        }
        return try await read { state in
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Shoal_V1_GetResponse, any Error>) in
                _ = self.startGet(request, state: state, deadline: deadline) { continuation.resume(with: $0.mapError { $0 }) }
            }
        }.points
    }

    func anomalyScore(_ request: Shoal_V1_AnomalyScoreRequest, deadline: ContinuousClock.Instant) async throws -> Shoal_V1_AnomalyScoreResponse {
        let config = try jobConfig(request.collection)
        guard (1...Self.maxAnomalyVectors).contains(request.vectors.count) else {
            throw ShoalError(.invalidArgument, "vectors: 1..=\(Self.maxAnomalyVectors) vectors, got \(request.vectors.count)")
        }
        for (i, vector) in request.vectors.enumerated() {
            _ = try PointValidation.validateVector(vector.values, dimension: Int(config.dimension), metric: config.metric, at: "vectors[\(i)]")
        }
        let filter = request.hasFilter ? request.filter : nil
        let points = try await storedPoints(request.collection, filter: filter, deadline: deadline)
        guard !points.isEmpty else { throw ShoalError(.failedPrecondition, "no stored point of \(request.collection) matches the filter") }
        let sample = LeaveOneOut.sample(points.map(\.id), count: Int(request.sample == 0 ? Self.defaultAnomalySample : request.sample))
        let sampled = points.filter { sample.contains($0.id) }
        var scores: [Double] = []
        var stored: [Double] = []
        switch request.method {
        case .anomalyCentroid:
            var centroid = Centroid(metric: config.metric, dimension: Int(config.dimension))
            for point in points { centroid.add(point.vector) }
            scores = request.vectors.map { centroid.distance($0.values) ?? 0 }
            stored = sampled.compactMap { centroid.distance($0.vector, leavingOut: true) }
        case .anomalyKnn, .unspecified:
            let k = try jobK(request.k)
            try Self.checkEnough(points.count, k: k)
            let asked = request.vectors.map {
                searchRequest(request.collection, vector: $0.values, k: k, filter: filter, exact: request.exact, withMetadata: false)
            }
            for start in stride(from: 0, to: asked.count, by: Self.jobBatch) {
                let replies = try await searches(Array(asked[start..<min(start + Self.jobBatch, asked.count)]), deadline: deadline)
                scores += replies.map { Self.meanDistance($0.hits) }
            }
            // A stored point's own score leaves it out of its neighbours.
            let own = sampled.map {
                searchRequest(request.collection, vector: $0.vector, k: k + 1, filter: filter, exact: request.exact, withMetadata: false)
            }
            for start in stride(from: 0, to: own.count, by: Self.jobBatch) {
                let end = min(start + Self.jobBatch, own.count)
                let replies = try await searches(Array(own[start..<end]), deadline: deadline)
                for (point, reply) in zip(sampled[start..<end], replies) {
                    let neighbours = LeaveOneOut.neighbours(reply.hits, excluding: point.id, k: Int(k), id: \.id)
                    if !neighbours.isEmpty { stored.append(Self.meanDistance(neighbours)) }
                }
            }
        case .UNRECOGNIZED(let value):
            throw ShoalError(.invalidArgument, "method \(value) is not one of knn, centroid")
        }
        return .with {
            $0.scores = scores
            $0.p50 = LeaveOneOut.percentile(stored, 50)
            $0.p90 = LeaveOneOut.percentile(stored, 90)
            $0.p95 = LeaveOneOut.percentile(stored, 95)
            $0.p99 = LeaveOneOut.percentile(stored, 99)
            $0.sampled = UInt64(stored.count)
        }
    }

    // MARK: helpers

    private func jobConfig(_ collection: String) throws(ShoalError) -> CollectionConfig {
        try routes.route(collection, in: cluster.snapshot).config
    }

    private func jobK(_ k: UInt32) throws(ShoalError) -> UInt32 {
        guard (1...Self.maxJobK).contains(k) else { throw ShoalError(.invalidArgument, "k must be 1..=\(Self.maxJobK), got \(k)") }
        return k
    }

    private func voteRule(_ vote: Shoal_V1_Vote, metric: Metric) throws(ShoalError) -> VoteRule {
        switch vote {
        case .unspecified, .majority: return .majority
        case .distanceWeighted:
            guard metric != .innerProduct else {
                throw ShoalError(.invalidArgument, "vote distance_weighted needs distances that are never negative (cosine or l2); this collection is ip")
            }
            return .distanceWeighted
        case .UNRECOGNIZED(let value): throw ShoalError(.invalidArgument, "vote \(value) is not one of majority, distance_weighted")
        }
    }

    private static func checkEnough(_ found: Int, k: UInt32) throws(ShoalError) {
        if found == 0 { throw ShoalError(.failedPrecondition, "no stored point matches the filter") }
        if found < Int(k) { throw ShoalError(.failedPrecondition, "k = \(k), but only \(found) stored points match the filter") }
    }

    private static func vote(_ hits: [Shoal_V1_ScoredPoint], field: String, rule: VoteRule) throws(ShoalError) -> KNNVote? {
        var neighbours: [(label: Label?, distance: Double)] = []
        for hit in hits { neighbours.append((try label(hit.metadata, field, of: hit.id), Double(hit.distance))) }
        return KNNVote(neighbours, rule: rule)
    }

    /// The label `field` of point `id` holds (nil: it lacks the field).
    private static func label(_ metadata: [String: Shoal_V1_Value], _ field: String, of id: String) throws(ShoalError) -> Label? {
        let value = try metadata[field].map { value throws(ShoalError) in try MetadataValue(proto: value, context: "metadata of \(id)") }
        return try Label(value, field: field, point: id)
    }

    private static func meanDistance(_ hits: [Shoal_V1_ScoredPoint]) -> Double {
        hits.isEmpty ? 0 : hits.reduce(0) { $0 + Double($1.distance) } / Double(hits.count)
    }

    /// `withMetadata`: the hits' labels are read (classify, evaluate); an anomaly score needs distances only.
    private func searchRequest(
        _ collection: String, vector: [Float], k: UInt32, filter: Shoal_V1_Filter?, exact: Bool, withMetadata: Bool = true
    ) -> Shoal_V1_SearchRequest {
        .with {
            $0.collection = collection
            $0.vector = vector
            $0.k = k
            if let filter { $0.filter = filter }
            $0.includeMetadata = withMetadata
            $0.exact = exact
        }
    }

    /// One SearchBatch, in a read slot against the current placement.
    private func searches(_ requests: [Shoal_V1_SearchRequest], deadline: ContinuousClock.Instant) async throws -> [Shoal_V1_SearchResponse] {
        try await read { state in
            try await self.searchBatch(.with { $0.searches = requests }, state: state, deadline: deadline).results
        }
    }

    private static func equals(_ field: String, _ value: Shoal_V1_Value) -> Shoal_V1_Filter {
        .with { $0.condition = .with { $0.field = field; $0.eq = value } }
    }

    private static func allOf(_ a: Shoal_V1_Filter?, _ b: Shoal_V1_Filter) -> Shoal_V1_Filter {
        guard let a else { return b }
        return .with { $0.allOf = .with { $0.filters = [a, b] } }
    }

    /// Every live point of `collection` matching `filter`, with metadata (and vector):
    /// each shard scanned from one in-sync replica (the next one if it fails).
    func storedPoints(
        _ collection: String, filter: Shoal_V1_Filter?, includeVector: Bool = true, deadline: ContinuousClock.Instant
    ) async throws -> [Shoal_V1_Point] {
        let matcher = try filter.map { proto throws(ShoalError) in try Filter(proto: proto, limits: limits) }
        let readers = try await cluster.withCurrentPlacement { state in try routes.route(collection, in: state).readers }
        var points: [Shoal_V1_Point] = []
        for replicas in readers {
            var lastError: (any Error)?
            for target in replicas {
                do {
                    points += try await scanShard(target, includeVector: includeVector, deadline: deadline).filter { point in
                        matcher?.matches(valueOf: { field in point.metadata[field].flatMap { try? MetadataValue(proto: $0, context: "") } }) ?? true
                    }
                    lastError = nil
                    break
                } catch {
                    lastError = error
                }
            }
            if let lastError { throw lastError }
        }
        return points
    }

    private func scanShard(_ target: ShardTarget, includeVector: Bool, deadline: ContinuousClock.Instant) async throws -> [Shoal_V1_Point] {
        var points: [Shoal_V1_Point] = []
        var token = Data()
        var snapshot: UInt64 = 0
        while true {
            let request = Shoal_V1_ScanRequest.with {
                $0.replica = target.ref
                $0.pageToken = token
                $0.pageSize = 1_000
                $0.snapshotID = snapshot
                $0.includeVector = includeVector
                $0.includeMetadata = true
            }
            let page = try await Self.call(target, nodes: cluster.nodes, deadline: deadline) {
                try await $0.call(ShardRPC.scan, request, timeout: $1)
            }
            snapshot = page.snapshotID
            points += page.points.lazy.filter { !$0.tombstone }.map(\.point)
            if page.done || page.nextPageToken.isEmpty { return points }
            token = page.nextPageToken
        }
    }
}
