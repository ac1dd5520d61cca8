/// Limits on stored metadata; a point that breaks one is rejected with
/// INVALID_ARGUMENT before anything is written.
public enum MetadataLimits {
    /// A field name is 1...256 bytes of UTF-8.
    public static let maxKeyBytes = 256
    /// A string value, or one element of a string list, is at most 64 KiB of UTF-8.
    public static let maxStringBytes = 65_536
    /// A string list holds at most 4,096 elements.
    public static let maxListElements = 4_096
    /// A point has at most 1,024 fields.
    public static let maxFields = 1_024
}

extension MetadataValue {
    /// Checks one value stored (or compared) under field `field`: strings and
    /// list elements within `MetadataLimits.maxStringBytes`, lists within
    /// `maxListElements`, doubles finite. `context` prefixes the message
    /// (`metadata field "price"`, or a filter path).
    /// Throws `ShoalError(.invalidArgument, …)` naming `context`.
    public func validate(context: String) throws(ShoalError) {
        switch self {
        case .int, .bool:
            return
        case .double(let d):
            guard d.isFinite else {
                throw .invalidArgument("\(context): double value must be finite, got \(d)")
            }
        case .string(let s):
            try Self.checkString(s, context: context)
        case .stringList(let list):
            guard list.count <= MetadataLimits.maxListElements else {
                throw .invalidArgument(
                    "\(context): string list has \(list.count) elements; the limit is \(MetadataLimits.maxListElements)")
            }
            for (i, s) in list.enumerated() {
                try Self.checkString(s, context: "\(context)[\(i)]")
            }
        }
    }

    private static func checkString(_ s: String, context: String) throws(ShoalError) {
        let bytes = s.utf8.count
        guard bytes <= MetadataLimits.maxStringBytes else {
            throw .invalidArgument(
                "\(context): string is \(bytes) bytes; the limit is \(MetadataLimits.maxStringBytes) (64 KiB)")
        }
    }
}

/// Checks a metadata field name: non-empty, at most `MetadataLimits.maxKeyBytes`
/// bytes. `what` names it in the message (`metadata field name`, a filter path).
func validateFieldName(_ name: String, what: String) throws(ShoalError) {
    guard !name.isEmpty else {
        throw .invalidArgument("\(what) must not be empty")
    }
    let bytes = name.utf8.count
    guard bytes <= MetadataLimits.maxKeyBytes else {
        throw .invalidArgument(
            "\(what) \(quotedForMessage(name)) is \(bytes) bytes; the limit is \(MetadataLimits.maxKeyBytes)")
    }
}

extension Dictionary where Key == String, Value == MetadataValue {
    /// Checks a point's metadata against `MetadataLimits`. Fields are checked in
    /// name order, so the first problem reported is the same on every run.
    /// Throws `ShoalError(.invalidArgument, …)` naming the field, e.g.
    /// `metadata field "price": double value must be finite, got nan`.
    public func validateMetadata() throws(ShoalError) {
        guard count <= MetadataLimits.maxFields else {
            throw .invalidArgument("metadata has \(count) fields; the limit is \(MetadataLimits.maxFields)")
        }
        for key in keys.sorted() {
            try validateFieldName(key, what: "metadata field name")
            try self[key]!.validate(context: "metadata field \(quotedForMessage(key))")
        }
    }
}
