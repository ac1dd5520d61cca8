import VectorCore

/// How long `PayloadIndex` takes on a million points: build it, then evaluate
/// and estimate filters that each select 1% of the points. Prints, never
/// asserts (STYLE.md: no timed tests). Run it with
/// `SHOAL_MEASURE_PAYLOAD=1 swift test --filter payloadIndexMeasurement`
/// (a debug build), or for release figures build VectorCore alone and link
/// this file, `SeededRandom.swift` and a one-line `main.swift` against it:
/// `swift build -c release --target VectorCore`, then
/// `swiftc -O -I .build/release/Modules main.swift <these two files> .build/release/VectorCore.build/*.o -lm`.
/// Figures: see `payloadIndexMeasurement`.
func measurePayloadIndex(points: Int = 1_000_000, print report: (String) -> Void) {
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
    report("built index over \(points) points in \(built)")
    let filters: [(String, Filter)] = [
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
    for (name, filter) in filters {
        var result = IdSet()
        var best = Duration.seconds(1_000)
        for _ in 0..<5 {
            best = min(best, clock.measure { result = index.evaluate(filter) })
        }
        var estimate = 0
        let estimated = clock.measure { estimate = index.estimate(filter) }
        report("\(name): \(result.count) ids (\(result.isBitmap ? "bitmap" : "sorted")) in \(best) (best of 5); estimate \(estimate) in \(estimated)")
    }
}
