import Synchronization
import VectorCore

/// One transport per node address, made on first use and shared by every call.
public final class NodeDirectory: Sendable {
    private let channels = Mutex<[String: any UnaryTransport]>([:])
    private let connect: @Sendable (String) throws -> any UnaryTransport

    /// `connect` makes a transport for an address (a gRPC channel; tests pass fakes).
    public init(connect: @escaping @Sendable (String) throws -> any UnaryTransport) {
        self.connect = connect
    }

    /// Uses `transport` for `address` from now on (`shoal serve`: its own node, in process).
    public func use(_ transport: any UnaryTransport, for address: String) {
        channels.withLock { $0[address] = transport }
    }

    public func transport(for address: String) throws -> any UnaryTransport {
        try channels.withLock { channels in
            if let existing = channels[address] { return existing }
            let made = try connect(address)
            channels[address] = made
            return made
        }
    }
}
