import Foundation

/// The on-disk encoding of a `ClusterState`: one header line, then the body.
///
/// ```
/// shoal-cluster-state 1 <body length in bytes> <CRC-32C of the body, 8 hex digits>\n
/// <body: the state as JSON, sorted keys>
/// ```
///
/// Text so an operator can read it with `cat`; the length and checksum catch
/// a truncated, extended or altered file, which `decode` reports instead of
/// ever yielding an empty or partial state.
public enum ClusterStateFile {
    public static let magic = "shoal-cluster-state"
    public static let formatVersion = 1

    /// The file's bytes for `state`.
    public static func encode(_ state: ClusterState) throws(ClusterStateStoreError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let body: [UInt8]
        do {
            body = Array(try encoder.encode(state))
        } catch {
            throw .corrupt(path: "", reason: "cannot encode the state: \(error)")
        }
        let crc = String(CRC32C.checksum(body), radix: 16)
        let header = "\(magic) \(formatVersion) \(body.count) \(String(repeating: "0", count: 8 - crc.count))\(crc)\n"
        return Array(header.utf8) + body
    }

    /// The state in `bytes` (read from `path`, named in errors). Throws
    /// `.corrupt` for anything but a complete, intact, valid file.
    public static func decode(_ bytes: [UInt8], path: String) throws(ClusterStateStoreError) -> ClusterState {
        func corrupt(_ reason: String) -> ClusterStateStoreError { .corrupt(path: path, reason: reason) }
        guard let newline = bytes.prefix(256).firstIndex(of: UInt8(ascii: "\n")) else {
            throw corrupt(bytes.isEmpty ? "the file is empty" : "no header line")
        }
        let fields = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard fields.count == 4, fields[0] == magic else { throw corrupt("not a Shoal cluster state file (bad header)") }
        guard fields[1] == String(formatVersion) else {
            throw corrupt("format version \(fields[1]) is not supported (this build reads \(formatVersion))")
        }
        guard let length = Int(fields[2]), let stored = UInt32(fields[3], radix: 16) else {
            throw corrupt("malformed header")
        }
        let body = bytes[(newline + 1)...]
        guard body.count == length else {
            throw corrupt("the body has \(body.count) bytes, the header says \(length) (truncated or partially written)")
        }
        let computed = CRC32C.checksum(body)
        guard computed == stored else {
            throw corrupt("checksum mismatch (header \(hex(stored)), contents \(hex(computed)))")
        }
        let state: ClusterState
        do {
            state = try JSONDecoder().decode(ClusterState.self, from: Data(body))
        } catch {
            throw corrupt("the checksum matches but the contents do not decode: \(error)")
        }
        do {
            try state.validate()
        } catch {
            throw corrupt("inconsistent state: \(error.message)")
        }
        return state
    }

    private static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
}
