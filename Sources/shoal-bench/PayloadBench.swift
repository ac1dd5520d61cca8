import ArgumentParser
import VectorCore

/// `shoal-bench payload`: how long `PayloadIndex` takes on many points: build it,
/// then evaluate and estimate filters that each select about 1% of the points.
///
/// Measured 2026-11-23 on the 2-core dev machine (shared with other builds,
/// load ≈ 5, so ±30%), 1,000,000 points with 4 fields, filters selecting ~1%
/// (≈10,000 ids), best of 5:
///
/// | filter                                   | release | debug  |
/// | ---------------------------------------- | ------- | ------ |
/// | category == c7 (a posting list)          | 0.2 µs  | 0.7 µs |
/// | 100 <= price < 110 (a range slice)       | 0.6 ms  | 23 ms  |
/// | stock < 10 and price < 100               | 1.0 ms  | 24 ms  |
/// | category in c0…c9 and not(stock >= 10)   | 6.6 ms  | 91 ms  |
/// | stock == 3 or (price < 5 and tags != w1) | 4.0 ms  | 22 ms  |
///
/// Estimates take 1–75 µs (release). Building the index (1M `set` calls,
/// metadata generation included) takes ≈5.5 s release, ≈41 s debug; the
/// release process peaks at ≈330 MB resident.
struct PayloadBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payload",
        abstract: "Payload index build, filter evaluation and estimates.")

    @Option(help: "Points indexed (4 fields each).") var points = 1_000_000
    @Option(help: "Evaluations per filter (the best is reported).") var reps = 5

    func run() throws {
        var g = SplitMix64(seed: 99)
        let clock = ContinuousClock()
        let index = PayloadIndex()
        let words = (0..<50).map { "w\($0)" }
        let built = clock.measure {
            for id in 0..<points {
                index.set(UInt32(id), [
                    "category": .string("c\(id % 100)"),
                    "price": .double(Double.random(in: 0..<1_000, using: &g)),
                    "stock": .int(Int64.random(in: 0..<100, using: &g)),
                    "tags": .stringList([words.randomElement(using: &g)!, words.randomElement(using: &g)!]),
                ])
            }
        }
        print("built index over \(points) points in \(built)")
        for (name, filter) in Self.filters {
            var result = IdSet()
            var best = Duration.seconds(1_000)
            for _ in 0..<max(1, reps) {
                best = min(best, clock.measure { result = index.evaluate(filter) })
            }
            var estimate = 0
            let estimated = clock.measure { estimate = index.estimate(filter) }
            print("\(name): \(result.count) ids (\(result.isBitmap ? "bitmap" : "sorted")) in \(best) (best of \(max(1, reps))); estimate \(estimate) in \(estimated)")
        }
    }

    /// Filters that each select about 1% of the generated points.
    static let filters: [(String, Filter)] = [
        ("category == c7 (posting list)", .field("category", .eq("c7"))),
        ("100 <= price < 110 (range)", .field("price", .range(lower: .init(100, inclusive: true), upper: .init(110, inclusive: false)))),
        ("stock < 10 and price < 100", .and([.field("stock", .lt(10)), .field("price", .lt(100))])),
        ("category in c0…c9 and not(stock >= 10)", .and([
            .field("category", .in((0..<10).map { .string("c\($0)") })),
            .not(.field("stock", .gte(10))),
        ])),
        ("stock == 3 or (price < 5 and tags != w1)", .or([
            .field("stock", .eq(3)),
            .and([.field("price", .lt(5)), .field("tags", .ne("w1"))]),
        ])),
    ]
}
