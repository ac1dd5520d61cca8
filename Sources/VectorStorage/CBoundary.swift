private import CRocksDB

// Helpers for crossing into RocksDB's C API. Unsafe pointer handling is kept
// here and in the handle-owning classes; nothing below is public.

/// The type of RocksDB's `char** errptr` out-parameter target.
typealias RocksErrorMessage = UnsafeMutablePointer<CChar>?

/// Throws if RocksDB set `error`; frees the message string (it was `malloc`ed by RocksDB).
/// Every call taking an `errptr` routes its result through here, so no message leaks.
///
/// Contract of the C API: `*errptr` must be nil before a call; on failure RocksDB stores a
/// `malloc`ed message there (freeing any message already present). Use a fresh `nil`
/// variable per call.
@inline(__always)
func throwIfSet(_ error: RocksErrorMessage) throws(StorageError) {
    guard let error else { return }
    let message = String(cString: error)
    rocksdb_free(error)
    throw StorageError(rocksDBMessage: message)
}

/// Copies a `malloc`ed buffer returned by RocksDB into an array and frees it.
func takeMallocedBytes(_ pointer: UnsafeMutablePointer<CChar>, count: Int) -> [UInt8] {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    rocksdb_free(pointer)
    return bytes
}

/// Copies a `malloc`ed C string returned by RocksDB into a `String` and frees it.
func takeMallocedString(_ pointer: UnsafeMutablePointer<CChar>) -> String {
    let string = String(cString: pointer)
    rocksdb_free(pointer)
    return string
}

extension Array where Element == UInt8 {
    /// Calls `body` with the bytes as RocksDB's `(const char*, size_t)` pair.
    /// The pointer is valid only during the call and may be nil when the array is empty.
    @inline(__always)
    func withCBytes<R>(_ body: (UnsafePointer<CChar>?, Int) -> R) -> R {
        withUnsafeBufferPointer { buffer in
            body(UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self), buffer.count)
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes as RocksDB's `(const char*, size_t)` pair.
    var cBytes: (UnsafePointer<CChar>?, Int) {
        (baseAddress?.assumingMemoryBound(to: CChar.self), count)
    }
}

/// A copy of a key in memory that does not move, for C options that keep a pointer to
/// the caller's bytes (`rocksdb_readoptions_set_iterate_upper_bound` stores a `Slice`
/// over the buffer, it does not copy). Deallocated in `deinit`; keep it alive as long
/// as any iterator made with those read options.
final class PinnedBytes {
    private let buffer: UnsafeMutableRawBufferPointer
    let count: Int

    init(_ bytes: [UInt8]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: source.count) }
        }
        self.buffer = buffer
        self.count = bytes.count
    }

    var pointer: UnsafePointer<CChar> {
        UnsafePointer(buffer.baseAddress!.assumingMemoryBound(to: CChar.self))
    }

    deinit { buffer.deallocate() }
}
