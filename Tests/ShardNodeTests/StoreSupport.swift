import Foundation
import VectorStorage

@testable import ShardNode

/// Opens a store on `dir`, retrying for up to 20 s while a closed instance still holds
/// RocksDB's lock (its threads release it shortly after `close()`).
func openStore(_ dir: URL, options: ShardStore.Options = .init(), log: LogCapture = LogCapture()) async throws -> ShardStore {
    let deadline = ContinuousClock.now + .seconds(20)
    while true {
        do {
            return try ShardStore(directory: dir, options: options, logger: log.logger)
        } catch is StorageError where ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
