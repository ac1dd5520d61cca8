import GRPCBridge
import Synchronization
import VectorCore

/// One channel per node address, made on first use and shared by every call.
public final class NodeDirectory: Sendable {
    private let channels = Mutex<[String: any UnaryTransport]>([:])
    private let connect: @Sendable (String) throws -> any UnaryTransport

    /// `connect` makes a transport for an address (a gRPC channel; tests and the
    /// embedded server may pass something else).
    public init(connect: @escaping @Sendable (String) throws -> any UnaryTransport = { try Channel(target: $0) }) {
        self.connect = connect
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
