#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin POSIX file helpers for `ClusterStateStore`: every failure becomes a
/// `ClusterStateStoreError.io` naming the path, the call and `errno`.
enum FileIO {
    /// The whole file, or nil if it does not exist.
    static func readIfExists(_ path: String) throws(ClusterStateStoreError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .io(path: path, operation: "open", errno: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// True when `path` exists.
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates or truncates `path`, writes `bytes`, fsyncs and closes it.
    static func writeAndSync(_ path: String, _ bytes: [UInt8]) throws(ClusterStateStoreError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "write", errno: errno)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
    }

    /// Atomically replaces `to` with `from`.
    static func rename(_ from: String, _ to: String) throws(ClusterStateStoreError) {
        #if canImport(Glibc)
        let rc = Glibc.rename(from, to)
        #else
        let rc = Darwin.rename(from, to)
        #endif
        guard rc == 0 else { throw .io(path: to, operation: "rename", errno: errno) }
    }

    /// Fsyncs a directory, making a rename in it durable.
    static func syncDirectory(_ path: String) throws(ClusterStateStoreError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
    }

    /// Creates `path` (one level) if missing.
    static func makeDirectory(_ path: String) throws(ClusterStateStoreError) {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw .io(path: path, operation: "mkdir", errno: errno)
        }
    }

    /// Removes `path`; a missing file is not an error.
    static func removeIfExists(_ path: String) throws(ClusterStateStoreError) {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .io(path: path, operation: "unlink", errno: errno)
        }
    }

    /// The system's text for an errno value.
    static func describe(errno code: Int32) -> String {
        String(cString: strerror(code))
    }
}
