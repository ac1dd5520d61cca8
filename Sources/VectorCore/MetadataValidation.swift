extension MetadataValue {
    /// Checks one value stored (or compared) under field `field`: strings and
    /// list elements within `limits.maxStringBytes`, lists within
    /// `maxListElements`, doubles finite. `context` prefixes the message
    /// (`metadata field "price"`, or a filter path).
    /// Throws `ShoalError(.invalidArgument, …)` naming `context`.
    public func validate(context: String, limits: RequestLimits) throws(ShoalError) {
        switch self {
        case .int, .bool:
            return
        case .double(let d):
            guard d.isFinite else {
                throw .invalidArgument("\(context): double value must be finite, got \(d)")
            }
        case .string(let s):
            try Self.checkString(s, context: context, limits: limits)
        case .stringList(let list):
            guard list.count <= limits.maxListElements else {
                throw .invalidArgument(
                    "\(context): string list has \(list.count) elements; the limit is \(limits.maxListElements) (--max-list-elements)")
            }
            for (i, s) in list.enumerated() {
                try Self.checkString(s, context: "\(context)[\(i)]", limits: limits)
            }
        }
    }

    /// Bytes this value counts for in `Metadata.measuredBytes`: a string's UTF-8
    /// bytes, each list element's UTF-8 bytes plus 2, 8 for a number, 1 for a bool.
    public var measuredBytes: Int {
        switch self {
        case .int, .double: 8
        case .bool: 1
        case .string(let s): s.utf8.count
        case .stringList(let list): list.reduce(0) { $0 + $1.utf8.count + 2 }
        }
    }

    private static func checkString(_ s: String, context: String, limits: RequestLimits) throws(ShoalError) {
        let bytes = s.utf8.count
        guard bytes <= limits.maxStringBytes else {
            throw .invalidArgument(
                "\(context): string is \(bytes) bytes; the limit is \(limits.maxStringBytes) (--max-string-bytes)")
        }
    }
}

/// Checks a metadata field name: non-empty, at most `limits.maxFieldNameBytes`
/// bytes. `what` names it in the message (`metadata field name`, a filter path).
func validateFieldName(_ name: String, what: String, limits: RequestLimits) throws(ShoalError) {
    guard !name.isEmpty else {
        throw .invalidArgument("\(what) must not be empty")
    }
    let bytes = name.utf8.count
    guard bytes <= limits.maxFieldNameBytes else {
        throw .invalidArgument(
            "\(what) \(quotedForMessage(name)) is \(bytes) bytes; the limit is \(limits.maxFieldNameBytes) (--max-field-name-bytes)")
    }
}

extension Dictionary where Key == String, Value == MetadataValue {
    /// The size a point's metadata counts for against `RequestLimits.maxMetadataBytes`:
    /// per field, its name's UTF-8 bytes + 4 + the value's `measuredBytes`. Close to
    /// (never far below) its protobuf encoding, and the same on every process.
    public var measuredBytes: Int {
        reduce(0) { $0 + $1.key.utf8.count + 4 + $1.value.measuredBytes }
    }

    /// Checks a point's metadata against `limits`: field count, each field in name
    /// order (so the first problem reported is the same on every run), then the
    /// total size (`measuredBytes`). Throws `ShoalError(.invalidArgument, …)`
    /// naming the field or limit, e.g. `metadata field "price": double value must be
    /// finite, got nan`.
    public func validateMetadata(limits: RequestLimits) throws(ShoalError) {
        guard count <= limits.maxFieldsPerPoint else {
            throw .invalidArgument("metadata has \(count) fields; the limit is \(limits.maxFieldsPerPoint) (--max-fields-per-point)")
        }
        for key in keys.sorted() {
            try validateFieldName(key, what: "metadata field name", limits: limits)
            try self[key]!.validate(context: "metadata field \(quotedForMessage(key))", limits: limits)
        }
        let bytes = measuredBytes
        guard bytes <= limits.maxMetadataBytes else {
            throw .invalidArgument(
                "metadata is \(bytes) bytes; the limit is \(limits.maxMetadataBytes) bytes per point (--max-metadata-bytes)")
        }
    }
}
