/// Tests in one process take turns through this gate when they open bridge channels
/// or check the bridge's live-object counters (which are process-wide): the counters
/// read zero only when no other test holds a channel. Swift Testing serializes only
/// within a suite, and GRPCBridgeTests and EtcdTests are separate modules.
public actor BridgeTestGate {
    public static let shared = BridgeTestGate()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func enter() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func leave() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    /// Runs `body` while no other gated test runs.
    public static func run<T>(_ body: () async throws -> T) async throws -> T {
        await shared.enter()
        do {
            let result = try await body()
            await shared.leave()
            return result
        } catch {
            await shared.leave()
            throw error
        }
    }
}
