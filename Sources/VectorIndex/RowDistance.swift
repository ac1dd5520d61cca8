import CVectorKernels

/// Distance from a fixed query to stored rows, as one graph walk sees them.
protocol RowDistance {
    func callAsFunction(_ id: UInt32) -> Float
    /// Starts loading the row of `id` into cache.
    func prefetch(_ id: UInt32)
}

/// Exact distances on the full float rows.
struct FloatRows: RowDistance {
    let q: UnsafePointer<Float>
    let vectors: UnsafeMutablePointer<Float>
    let stride: Int
    let dimension: Int
    let kernel: shoal_dist_fn
    let sign: Float
    let bias: Float
    let lines: Int

    @inline(__always) func callAsFunction(_ id: UInt32) -> Float {
        sign * kernel(q, vectors + Int(id) &* stride, dimension) + bias
    }

    @inline(__always) func prefetch(_ id: UInt32) {
        let row = UnsafeRawPointer(vectors + Int(id) &* stride)
        for l in 0..<lines { shoal_prefetch(row + l &* 64) }
    }
}

/// Approximate distances on the int8 rows: the query is quantised the same way (one scale), the integer
/// dot product is scaled back. Squared L2 uses ‖q‖² + ‖v‖² − 2 q·v with the row's exact norm.
struct CodeRows: RowDistance {
    let qCodes: UnsafePointer<Int8>
    let qScale: Float
    let qNorm: Float
    let codes: UnsafeMutablePointer<Int8>
    let stride: Int
    let codeLength: Int
    let dot: shoal_dot_i8i8_fn
    let isL2: Bool
    let bias: Float
    let lines: Int

    @inline(__always) func callAsFunction(_ id: UInt32) -> Float {
        let row = codes + Int(id) &* stride
        let meta = UnsafeRawPointer(row + codeLength)
        let d = Float(dot(qCodes, row, codeLength)) * qScale * meta.load(as: Float.self)
        return isL2 ? qNorm + meta.load(fromByteOffset: 4, as: Float.self) - 2 * d : bias - d
    }

    @inline(__always) func prefetch(_ id: UInt32) {
        let row = UnsafeRawPointer(codes + Int(id) &* stride)
        for l in 0..<lines { shoal_prefetch(row + l &* 64) }
    }
}

extension HNSWIndex {
    func floatRows(_ q: UnsafePointer<Float>) -> FloatRows {
        FloatRows(q: q, vectors: store.vectors, stride: store.vectorStride, dimension: dimension, kernel: kernel, sign: sign,
                  bias: bias, lines: min((dimension * 4 + 63) / 64, params.prefetchLines))
    }

    /// Runs `body` with int8 row distances for query `q`, or returns nil without an int8 copy.
    func withCodeRows<R>(_ q: UnsafePointer<Float>, _ body: (CodeRows) throws -> R) rethrows -> R? {
        guard let codes = store.codes else { return nil }
        let length = store.codeMetaOffset
        return try withUnsafeTemporaryAllocation(of: Int8.self, capacity: length) { qc in
            let scale = store.quantize(q, into: qc.baseAddress!, length: length)
            let rows = CodeRows(qCodes: qc.baseAddress!, qScale: scale, qNorm: shoal_dot_scalar(q, q, dimension), codes: codes,
                                stride: store.codeStride, codeLength: length, dot: dotI8I8, isL2: metric == .l2, bias: bias,
                                lines: min((store.codeStride + 63) / 64, params.prefetchLines))
            return try body(rows)
        }
    }
}
