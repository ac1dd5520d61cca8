private import CRocksDB

extension Database {
    /// How a database is opened and tuned. The defaults suit a vector store: values are
    /// large (a 768-d float32 vector is 3 KiB), point lookups by id are frequent and often
    /// miss (upserts of new ids), and scans are by key prefix with an explicit upper bound.
    public struct Options: Sendable, Equatable {
        /// Create the database if the directory holds none.
        public var createIfMissing = true
        /// Fail if a database already exists at the path.
        public var errorIfExists = false
        /// Memtable size. Larger than RocksDB's 64 MiB default: vector values fill a
        /// memtable quickly, and bigger memtables mean fewer L0 files and less write
        /// amplification during bulk ingest.
        public var writeBufferSize = 128 << 20
        /// Memtables kept (one active, the rest waiting to flush) before writes stall.
        public var maxWriteBufferNumber = 3
        /// Shared LRU cache for data, index and filter blocks.
        public var blockCacheSize = 256 << 20
        /// Whole-key Bloom filter bits per key; `nil` disables filters. Point lookups of
        /// absent ids (the common case for an upsert of a new point) skip SST reads.
        /// No prefix extractor: keys of several kinds share the key space and scans use
        /// an explicit upper bound instead, which needs no prefix Bloom filter.
        public var bloomBitsPerKey: Double? = 10
        /// Block compression. LZ4 is cheap; float vectors barely compress, metadata and
        /// graph links do.
        public var compression: Compression = .lz4
        /// Compaction and flush threads (`max_background_jobs`, `increase_parallelism`).
        public var backgroundJobs = 2
        /// Incremental `fsync` of SST files every this many bytes, smoothing I/O; 0 disables.
        public var bytesPerSync = 1 << 20
        /// Retained info-log files (`LOG.old.*`) in the database directory.
        public var keepLogFileCount = 3
        /// The least severe message RocksDB writes to its info log (`LOG`). `fatal` by
        /// default, so that after the open's header RocksDB writes there almost never:
        /// Debian's librocksdb 7.8.3 keeps its assertions, and once an append to `LOG`
        /// has failed (the disk is full) the next message aborts the process
        /// (`WritableFileWriter::AssertFalseAndGetStatusForPrevError`); at `warn` a
        /// full disk killed the process, at `fatal` it never did. Shoal logs every
        /// storage error it is given itself.
        public var infoLogLevel: InfoLogLevel = .fatal

        /// RocksDB's `InfoLogLevel`, in its order.
        public enum InfoLogLevel: Int32, Sendable, Equatable {
            case debug, info, warn, error, fatal
        }

        public enum Compression: Sendable, Equatable {
            case none, snappy, lz4, zstd
        }

        public init() {}
    }
}

extension Database.Options.Compression {
    var rocksValue: Int32 {
        switch self {
        case .none: Int32(rocksdb_no_compression)
        case .snappy: Int32(rocksdb_snappy_compression)
        case .lz4: Int32(rocksdb_lz4_compression)
        case .zstd: Int32(rocksdb_zstd_compression)
        }
    }
}

extension Database.Options {
    /// Builds a `rocksdb_options_t`. The caller owns the result and destroys it with
    /// `rocksdb_options_destroy` (RocksDB copies options at open; nothing else keeps it).
    func makeRocksOptions() -> OpaquePointer {
        let options = rocksdb_options_create()!
        rocksdb_options_set_create_if_missing(options, createIfMissing ? 1 : 0)
        rocksdb_options_set_error_if_exists(options, errorIfExists ? 1 : 0)
        rocksdb_options_increase_parallelism(options, Int32(backgroundJobs))
        rocksdb_options_set_max_background_jobs(options, Int32(backgroundJobs))
        rocksdb_options_set_write_buffer_size(options, writeBufferSize)
        rocksdb_options_set_max_write_buffer_number(options, Int32(maxWriteBufferNumber))
        rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1)
        rocksdb_options_set_compression(options, compression.rocksValue)
        rocksdb_options_set_bytes_per_sync(options, UInt64(bytesPerSync))
        rocksdb_options_set_keep_log_file_num(options, keepLogFileCount)
        rocksdb_options_set_info_log_level(options, infoLogLevel.rawValue)

        let table = rocksdb_block_based_options_create()!
        // The table options hold a shared reference to the cache; our wrapper can go.
        let cache = rocksdb_cache_create_lru(blockCacheSize)!
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_cache_destroy(cache)
        if let bloomBitsPerKey {
            // Ownership of the policy passes to the table options: never destroy it here.
            rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom_full(bloomBitsPerKey))
        }
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1)
        // The factory copies the table options.
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_block_based_options_destroy(table)
        return options
    }
}
