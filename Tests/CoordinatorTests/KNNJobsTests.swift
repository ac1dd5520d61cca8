import Coordinator
import Testing
import VectorCore

@Suite struct KNNJobsTests {
    @Test func majorityCountsVotesAndATieGoesToTheNearerNeighbour() throws {
        let a = Label.string("a"), b = Label.string("b")
        // 2 votes each: b's nearest neighbour (rank 0) is nearer than a's (rank 1).
        let vote = try #require(KNNVote([(b, 0.1), (a, 0.2), (a, 0.3), (b, 0.4), (nil, 0.5)], rule: .majority))
        #expect(vote.label == b)
        #expect(vote.scores.map(\.label) == [b, a])
        #expect(vote.scores.map(\.score) == [0.5, 0.5] && vote.scores.map(\.votes) == [2, 2])  // the unlabelled one does not vote
        #expect(KNNVote([(nil, 0.1)], rule: .majority) == nil)
    }

    @Test func distanceWeightedVotesWeighByTheInverseDistance() throws {
        let a = Label.int(1), b = Label.int(2)
        // a: 1/(0.1+ε) ≈ 10; b: 2 × 1/(1+ε) ≈ 2: the nearer single neighbour wins.
        let vote = try #require(KNNVote([(a, 0.1), (b, 1.0), (b, 1.0)], rule: .distanceWeighted))
        #expect(vote.label == a)
        let wa = 1 / (0.1 + 1e-6), wb = 2 / (1.0 + 1e-6)
        #expect(abs(vote.scores[0].score - wa / (wa + wb)) < 1e-12)
        #expect(try #require(KNNVote([(a, 0.1), (b, 1.0), (b, 1.0)], rule: .majority)).label == b)
    }

    @Test func leaveOneOutDropsThePointItselfOrElseTheLastNeighbour() {
        #expect(LeaveOneOut.neighbours(["x", "me", "y", "z"], excluding: "me", k: 3, id: { $0 }) == ["x", "y", "z"])
        #expect(LeaveOneOut.neighbours(["x", "y", "z", "w"], excluding: "me", k: 3, id: { $0 }) == ["x", "y", "z"])
    }

    @Test func percentilesInterpolateLikeNumpy() {
        let values: [Double] = [4, 1, 3, 2, 10]
        // numpy.percentile([1, 2, 3, 4, 10], [50, 90, 95, 99]) = 3, 7.6, 8.8, 9.76
        #expect(LeaveOneOut.percentile(values, 50) == 3)
        #expect(abs(LeaveOneOut.percentile(values, 90) - 7.6) < 1e-12)
        #expect(abs(LeaveOneOut.percentile(values, 95) - 8.8) < 1e-12)
        #expect(abs(LeaveOneOut.percentile(values, 99) - 9.76) < 1e-12)
        #expect(LeaveOneOut.percentile([], 50) == 0 && LeaveOneOut.percentile([7], 99) == 7)
    }

    @Test func aStableSampleIsTheSameEveryTime() {
        let ids = (0..<1000).map { "id\($0)" }
        let sample = LeaveOneOut.sample(ids, count: 100)
        #expect(sample.count == 100 && sample == LeaveOneOut.sample(ids.reversed(), count: 100))
        #expect(LeaveOneOut.sample(ids, count: 5000).count == 1000)
        // Pages walk one order, whatever order the shards' scans came in.
        #expect(LeaveOneOut.stableOrder(ids, id: { $0 }) == LeaveOneOut.stableOrder(ids.shuffled(), id: { $0 }))
    }

    @Test func centroidDistancesFollowTheMetricAndLeaveOneOut() throws {
        var l2 = Centroid(metric: .l2, dimension: 2)
        for v: [Float] in [[0, 0], [2, 0], [4, 0]] { l2.add(v) }
        #expect(l2.distance([2, 1]) == 1)                      // mean (2, 0)
        #expect(l2.distance([4, 0], leavingOut: true) == 9)    // mean of the others (1, 0)
        var cosine = Centroid(metric: .cosine, dimension: 2)
        cosine.add([10, 0])
        cosine.add([0, 0.5])                                   // unit vectors first: mean (0.5, 0.5)
        #expect(abs(try #require(cosine.distance([1, 1])) - 0) < 1e-12)
        var one = Centroid(metric: .l2, dimension: 1)
        one.add([1])
        #expect(one.distance([1], leavingOut: true) == nil)
    }

    @Test func theTallyReportsAccuracyPerLabelAndConfusions() {
        var tally = ClassifierTally()
        let a = Label.string("a"), b = Label.string("b"), c = Label.int(3)
        for (actual, predicted) in [(a, a), (a, a), (a, b), (b, b), (b, a), (c, b), (c, b)] { tally.add(actual: actual, predicted: predicted) }
        tally.skip()
        #expect(tally.evaluated == 7 && tally.correct == 3 && tally.skipped == 1)
        let rows = tally.perLabel
        #expect(rows.map(\.label) == [a, b, c])  // strings, then ints
        #expect(rows[0].precision == 2.0 / 3 && rows[0].recall == 2.0 / 3 && rows[0].support == 3)
        #expect(rows[1].precision == 1.0 / 4 && rows[1].recall == 1.0 / 2)
        #expect(rows[2].precision == 0 && rows[2].recall == 0 && rows[2].support == 2)
        let top = tally.confusions(top: 2)
        #expect(top.map(\.count) == [2, 1] && top[0].pair == ClassifierTally.Pair(actual: c, predicted: b))
    }

    @Test func aLabelIsAStringOrAnInt() throws {
        #expect(try Label(.string("x"), field: "f", point: "p") == .string("x"))
        #expect(try Label(nil, field: "f", point: "p") == nil)
        #expect(throws: ShoalError.self) { try Label(.double(1.5), field: "f", point: "p") }
    }
}
