/// One metadata value of a point: the Swift twin of `shoal.v1.Value`.
///
/// `Hashable` is structural (`.int(3) != .double(3.0)` as values); the
/// filter semantics compare numbers by value across kinds (see `Condition`).
public enum MetadataValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    /// A list of strings such as tags; `eq`/`in` match any element.
    case stringList([String])

    /// The kind's name as users write it, for error messages: `string`,
    /// `int`, `double`, `bool`, `string list`.
    public var kindName: String {
        switch self {
        case .string: "string"
        case .int: "int"
        case .double: "double"
        case .bool: "bool"
        case .stringList: "string list"
        }
    }

    /// True for `.int` and `.double`: the kinds a range can match.
    public var isNumber: Bool {
        switch self {
        case .int, .double: true
        default: false
        }
    }
}

/// A point's metadata: field name → value.
public typealias Metadata = [String: MetadataValue]

extension MetadataValue: CustomStringConvertible {
    /// A short, readable rendering for messages: strings quoted and cut at 64
    /// characters, lists as `["a", "b"]`.
    public var description: String {
        switch self {
        case .string(let s): quotedForMessage(s)
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        case .stringList(let l):
            "[" + l.prefix(8).map { quotedForMessage($0) }.joined(separator: ", ") + (l.count > 8 ? ", …]" : "]")
        }
    }
}

extension MetadataValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: String...) { self = .stringList(elements) }
}

/// `"text"` with quotes, cut to `limit` characters with `…`, for error messages.
func quotedForMessage(_ s: String, limit: Int = 64) -> String {
    var out = "\""
    var n = 0
    for c in s.unicodeScalars {
        if n == limit {
            out += "…"
            break
        }
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(c)
        }
        n += 1
    }
    return out + "\""
}
