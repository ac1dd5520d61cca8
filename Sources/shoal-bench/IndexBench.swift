import ArgumentParser
import Foundation
import VectorCore
import VectorIndex

/// `shoal-bench index`: build an HNSW index over a dataset folder made by `bench/datasets.py`, sweep ef,
/// run filtered searches, and print one JSON object (see README of the bench folder).
struct IndexBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "index", abstract: "HNSW index against a dataset folder.")

    @Option(help: "Dataset folder (base.npy, queries.npy, gt_ids.npy, meta.json).") var data: String
    @Option(help: "Links per node.") var m: Int = 16
    @Option(name: .customLong("ef-construction"), help: "Beam width while building.") var efConstruction: Int = 200
    @Option(help: "Comma-separated search beam widths.") var ef: String = "10,20,40,80,160,320"
    @Option(help: "Build threads.") var threads: Int = 1
    @Option(name: .customLong("filter-selectivity"), help: "Comma-separated filter selectivities.") var filterSelectivity: String = "0.01,0.1,0.5"
    @Option(name: .customLong("filter-ef"), help: "ef for filtered searches (default: first ef reaching recall 0.95).") var filterEf: Int?
    @Option(help: "Timed passes over the queries per setting (median QPS).") var reps: Int = 3
    @Option(help: "Use at most this many queries.") var queries: Int?
    @Option(help: "int8 copy of the vectors: auto (dimension ≥ 256), on, off.") var quantize: String = "auto"
    @Option(name: .customLong("quantized-traversal"), help: "Walk the graph on the int8 copy, re-rank on full vectors: auto, on, off.") var quantizedTraversal: String = "auto"
    @Option(name: .customLong("prefetch-lines"), help: "Cache lines of each neighbour row prefetched (tuning).") var prefetchLines: Int = 8
    @Option(name: .customLong("prefetch-ahead"), help: "Rows prefetched ahead of the distance loop, 0 = all (tuning).") var prefetchAhead: Int = 0
    @Flag(help: "Print JSON (the only output format).") var json = false

    func run() async throws {
        let dir = URL(fileURLWithPath: data)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("meta.json"))) as? [String: Any] ?? [:]
        guard let metricName = meta["metric"] as? String, let metric = Metric(name: metricName) else {
            throw ValidationError("meta.json has no known metric")
        }
        let base = try NpyArray(url: dir.appendingPathComponent("base.npy"))
        var qs = try NpyArray(url: dir.appendingPathComponent("queries.npy"))
        let gt = try NpyArray(url: dir.appendingPathComponent("gt_ids.npy"))
        if let queries, queries < qs.rows { qs = qs.prefix(rows: queries) }
        let dim = base.cols, n = base.rows, nq = qs.rows
        let k = 10
        let efs = ef.split(separator: ",").compactMap { Int($0) }
        let sels = filterSelectivity.split(separator: ",").compactMap { Double($0) }
        var out: [String: Any] = ["dataset": dir.lastPathComponent, "n": n, "dim": dim, "metric": metric.rawValue,
                                  "m": m, "ef_construction": efConstruction, "threads": threads, "queries": nq]

        let params = HNSWParameters(m: m, efConstruction: efConstruction, quantizedScan: quantize == "auto" ? nil : quantize == "on",
                                    quantizedTraversal: quantizedTraversal == "auto" ? nil : quantizedTraversal == "on",
                                    prefetchLines: prefetchLines, prefetchAhead: prefetchAhead)
        out["quantize"] = quantize
        out["quantized_traversal"] = quantizedTraversal
        let index = try HNSWIndex(dimension: dim, metric: metric, params: params, capacity: n)
        let t0 = Date()
        try base.floats.withUnsafeBufferPointer { try index.insert(contentsOf: $0, threads: threads) }
        out["build_seconds"] = Date().timeIntervalSince(t0)
        out["bytes_per_vector"] = index.bytesPerVector
        out["kernel"] = HNSWIndex.kernelName(allowSIMD: true)

        // Image round trip: time to serialize and to load, and whether results are identical.
        let t1 = Date()
        let image = index.serialize()
        let serializeSeconds = Date().timeIntervalSince(t1)
        let t2 = Date()
        let loaded = try HNSWIndex(image: image)
        let loadSeconds = Date().timeIntervalSince(t2)
        var identical = true
        for qi in 0..<min(nq, 200) {
            let a = try qs.row(qi) { try index.graphSearch(query: Array($0), k: k, ef: 64) }
            let b = try qs.row(qi) { try loaded.graphSearch(query: Array($0), k: k, ef: 64) }
            if a.hits != b.hits { identical = false }
        }
        out["image"] = ["bytes": image.count, "serialize_seconds": serializeSeconds, "load_seconds": loadSeconds,
                        "identical_results": identical]

        let truth: [[Int32]] = (0..<nq).map { q in (0..<k).map { gt.int32(q, $0) } }
        func recall(_ hits: [[UInt32]], _ truth: [[Int32]]) -> Double {
            var s = 0
            for (h, t) in zip(hits, truth) { s += Set(h.prefix(k).map { Int32($0) }).intersection(t.prefix(k)).count }
            return Double(s) / Double(hits.count * k)
        }

        // Runs every query `reps` times through `search`; returns the hits of the last pass and timings.
        func timed(_ search: (Int) throws -> SearchResult) rethrows -> (hits: [[UInt32]], qps: Double, p50: Double, p99: Double,
                                                                       strategies: [String: Int], distances: Double) {
            var hits = [[UInt32]](repeating: [], count: nq)
            var qpsRuns: [Double] = []
            var lat: [Double] = []
            var strategies: [String: Int] = [:]
            var dists = 0
            for rep in 0..<max(reps, 1) {
                let start = DispatchTime.now().uptimeNanoseconds
                for qi in 0..<nq {
                    let a = DispatchTime.now().uptimeNanoseconds
                    let r = try search(qi)
                    let b = DispatchTime.now().uptimeNanoseconds
                    lat.append(Double(b - a) / 1000)
                    if rep == 0 {
                        hits[qi] = r.hits.map(\.id)
                        strategies[r.strategy.rawValue, default: 0] += 1
                        dists += r.distancesComputed
                    }
                }
                qpsRuns.append(Double(nq) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
            }
            lat.sort()
            return (hits, qpsRuns.sorted()[qpsRuns.count / 2], lat[lat.count / 2], lat[min(lat.count - 1, lat.count * 99 / 100)],
                    strategies, Double(dists) / Double(nq))
        }

        var sweep: [[String: Any]] = []
        var firstGood: Int?
        for e in efs {
            let auto = try timed { qi in try qs.row(qi) { try index.search(query: $0, k: k, ef: e) } }
            let graph = try timed { qi in try qs.row(qi) { try index.graphSearch(query: $0, k: k, ef: e, quantized: false) } }
            let coded = quantize == "off" ? nil
                : try timed { qi in try qs.row(qi) { try index.graphSearch(query: $0, k: k, ef: e, quantized: true) } }
            let r = recall(auto.hits, truth)
            if r >= 0.95 && firstGood == nil { firstGood = e }
            sweep.append(["ef": e, "recall_at_10": r, "qps": auto.qps, "p50_us": auto.p50, "p99_us": auto.p99,
                          "strategy": auto.strategies, "distances_per_query": auto.distances,
                          "graph_only": ["recall_at_10": recall(graph.hits, truth), "qps": graph.qps, "p50_us": graph.p50,
                                         "p99_us": graph.p99, "distances_per_query": graph.distances],
                          "graph_int8_walk": coded.map { ["recall_at_10": recall($0.hits, truth), "qps": $0.qps, "p50_us": $0.p50,
                                                          "p99_us": $0.p99, "distances_per_query": $0.distances] } ?? [:]])
        }
        out["sweep"] = sweep

        // Filters: a deterministic attribute per point; a predicate keeps a `selectivity` share of points.
        let attr: [UInt32] = (0..<n).map { UInt32(truncatingIfNeeded: mix(UInt64($0)) % 1_000_000) }
        let fef = filterEf ?? firstGood ?? efs.max() ?? 64
        var filtered: [[String: Any]] = []
        for s in sels {
            let threshold = UInt32(s * 1_000_000)
            let ids = (0..<UInt32(n)).filter { attr[Int($0)] < threshold }
            let filter = SearchFilter(estimatedMatches: ids.count, matchingIds: ids) { attr[Int($0)] < threshold }
            let exact = try (0..<nq).map { qi in try qs.row(qi) { try index.exactSearch(query: Array($0), k: k, ids: ids).hits.map { Int32($0.id) } } }
            let res = try timed { qi in try qs.row(qi) { try index.search(query: $0, k: k, ef: fef, filter: filter) } }
            let violations = res.hits.joined().filter { attr[Int($0)] >= threshold }.count
            filtered.append(["selectivity": s, "matches": ids.count, "ef": fef, "recall_at_10": recall(res.hits, exact),
                             "qps": res.qps, "p50_us": res.p50, "p99_us": res.p99, "strategy": res.strategies,
                             "distances_per_query": res.distances, "filter_violations": violations])
        }
        out["filtered"] = filtered
        let text = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: text, as: UTF8.self))
    }
}

private func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A 2-d `.npy` array of little-endian float32 (`<f4`) or int32 (`<i4`) in C order.
struct NpyArray {
    var rows: Int
    var cols: Int
    var floats: [Float] = []
    var ints: [Int32] = []

    init(url: URL) throws {
        let bytes = try Data(contentsOf: url)
        guard bytes.count > 10, bytes.prefix(6) == Data([0x93]) + Data("NUMPY".utf8) else { throw ValidationError("\(url.path): not a .npy file") }
        let major = bytes[bytes.startIndex + 6]
        let headerLen: Int, headerStart: Int
        if major == 1 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLen], as: UTF8.self)
        guard header.contains("'fortran_order': False") else { throw ValidationError("\(url.path): Fortran order unsupported") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw ValidationError("\(url.path): no shape")
        }
        let dims = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        rows = dims.first ?? 0
        cols = dims.count > 1 ? dims[1] : 1
        let payload = bytes[(headerStart + headerLen)...]
        if header.contains("'<f4'") {
            floats = [Float](repeating: 0, count: rows * cols)
            _ = floats.withUnsafeMutableBytes { payload.copyBytes(to: $0) }
        } else if header.contains("'<i4'") {
            ints = [Int32](repeating: 0, count: rows * cols)
            _ = ints.withUnsafeMutableBytes { payload.copyBytes(to: $0) }
        } else if header.contains("'<i8'") {
            var wide = [Int64](repeating: 0, count: rows * cols)
            _ = wide.withUnsafeMutableBytes { payload.copyBytes(to: $0) }
            ints = wide.map { Int32(truncatingIfNeeded: $0) }
        } else {
            throw ValidationError("\(url.path): only <f4, <i4 and <i8 are supported")
        }
    }

    func prefix(rows r: Int) -> NpyArray {
        var c = self
        c.rows = r
        if !floats.isEmpty { c.floats = Array(floats[0..<r * cols]) }
        if !ints.isEmpty { c.ints = Array(ints[0..<r * cols]) }
        return c
    }

    func row<R>(_ i: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try floats.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[i * cols..<(i + 1) * cols])) }
    }

    func int32(_ r: Int, _ c: Int) -> Int32 { ints[r * cols + c] }
}
