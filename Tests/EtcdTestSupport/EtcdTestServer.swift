import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One real etcd member on loopback for a test: free ports, a temporary data folder,
/// one log file. `start()` waits until etcd reports itself healthy (polling, with a
/// timeout); `stop()` ends it by pid (SIGTERM, then SIGKILL); `deinit` always kills it
/// and removes the folder.
public final class EtcdTestServer: @unchecked Sendable {
    // @unchecked: `process` is guarded by `lock`; everything else is immutable.
    public let clientPort: Int
    public let peerPort: Int
    public let folder: URL
    public var dataDir: URL { folder.appendingPathComponent("data") }
    public var logFile: URL { folder.appendingPathComponent("etcd.log") }
    /// "127.0.0.1:PORT", for `EtcdClient(endpoints:)`.
    public var endpoint: String { "127.0.0.1:\(clientPort)" }

    public let name: String
    private let binary: String
    private let initialCluster: String?  // nil: a cluster of this member alone
    private let clusterToken: String
    private let extraArguments: [String]
    private let lock = NSLock()
    private var process: Process?

    /// Picks ports and a folder, and starts etcd unless `start` is false; `arguments`
    /// are added to etcd's command line.
    public convenience init(binary: String = "/usr/bin/etcd", start: Bool = true, arguments: [String] = []) async throws {
        let clientPort = try freeLoopbackPort()
        try self.init(binary: binary, name: "test-\(clientPort)", clientPort: clientPort, peerPort: try freeLoopbackPort(),
                      initialCluster: nil, clusterToken: "etcd-cluster", extraArguments: arguments)
        if start { try await self.start() }
    }

    /// One member of `EtcdTestCluster`: launched by it, with the whole cluster's peer list.
    init(
        binary: String, name: String, clientPort: Int, peerPort: Int, initialCluster: String?, clusterToken: String,
        extraArguments: [String] = []
    ) throws {
        self.binary = binary
        self.extraArguments = extraArguments
        self.name = name
        self.clientPort = clientPort
        self.peerPort = peerPort
        self.initialCluster = initialCluster
        self.clusterToken = clusterToken
        self.folder = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    deinit {
        kill(signal: SIGKILL)
        try? FileManager.default.removeItem(at: folder)
    }

    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// Starts etcd on the same ports and data folder; returns once it is healthy.
    public func start(timeout: Duration = .seconds(20)) async throws {
        try launch()
        try await waitUntilHealthy(timeout: timeout)
    }

    /// Polls etcd's /health (true once the cluster has a leader) until `timeout`.
    func waitUntilHealthy(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while !httpGet("/health").contains("\"health\":\"true\"") {
            guard isRunning else { throw EtcdTestServerError("etcd exited at start; log:\n\(log())") }
            guard ContinuousClock.now < deadline else {
                throw EtcdTestServerError("etcd on \(endpoint) not healthy after \(timeout); log:\n\(log())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func launch() throws {
        try lock.withLock {
            if let process, process.isRunning { return }
            let peer = "http://127.0.0.1:\(peerPort)", client = "http://127.0.0.1:\(clientPort)"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "--name", name, "--data-dir", dataDir.path,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initialCluster ?? "\(name)=\(peer)",
                "--initial-cluster-token", clusterToken,
            ] + extraArguments
            if !FileManager.default.fileExists(atPath: logFile.path) {
                _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
            }
            let log = try FileHandle(forWritingTo: logFile)
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            self.process = process
        }
    }

    /// SIGTERM, then SIGKILL if etcd has not exited within `grace`. Waits for the exit.
    public func stop(grace: Duration = .seconds(5)) {
        guard let process = lock.withLock({ process }) else { return }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGCONT)  // a paused etcd cannot handle SIGTERM
            process.terminate()
            let deadline = ContinuousClock.now + grace
            while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        lock.withLock { if self.process === process { self.process = nil } }
    }

    /// SIGSTOP: etcd keeps its sockets but answers nothing.
    /// Returns once every thread of etcd is stopped (SIGSTOP lands asynchronously: a
    /// call made right after the signal could otherwise still be answered), at most 5 s.
    public func pause() {
        kill(signal: SIGSTOP)
        guard let pid = lock.withLock({ process?.processIdentifier }) else { return }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !Self.allThreadsStopped(pid) { usleep(1_000) }
    }

    /// Whether /proc shows every thread of `pid` stopped (state T).
    private static func allThreadsStopped(_ pid: Int32) -> Bool {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !threads.isEmpty else { return false }
        return threads.allSatisfy { tid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(after: close)...].split(separator: " ").first == "T"
        }
    }
    /// SIGCONT after `pause()`.
    public func resume() { kill(signal: SIGCONT) }

    /// Stops and starts again on the same ports, keeping the data.
    public func restart() async throws {
        stop()
        try await start()
    }

    /// Stops etcd and deletes its data; `start()` then begins an empty cluster.
    public func wipe() {
        stop()
        try? FileManager.default.removeItem(at: dataDir)
    }

    /// Compacts etcd's history up to `revision` (through etcd's JSON gateway).
    public func compact(revision: Int64) throws {
        let reply = httpPost("/v3/kv/compaction", body: "{\"revision\": \"\(revision)\", \"physical\": true}")
        guard reply.hasPrefix("HTTP/1.1 200") || reply.hasPrefix("HTTP/1.0 200") else {
            throw EtcdTestServerError("compaction to \(revision) failed: \(reply)")
        }
    }

    /// What etcd wrote to its log so far (the last 4,000 characters).
    public func log() -> String {
        String((try? String(contentsOf: logFile, encoding: .utf8))?.suffix(4000) ?? "")
    }

    private func kill(signal: Int32) {
        lock.withLock {
            if let process, process.isRunning { _ = Glibc.kill(process.processIdentifier, signal) }
        }
        if signal == SIGKILL { lock.withLock { process }?.waitUntilExit() }
    }

    private func httpGet(_ path: String) -> String {
        httpExchange(clientPort, "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    }

    private func httpPost(_ path: String, body: String) -> String {
        httpExchange(clientPort, "POST \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }
}

/// Several etcd members on loopback forming one cluster (3 for fault tests).
public final class EtcdTestCluster: Sendable {
    public let members: [EtcdTestServer]
    /// Each member's "127.0.0.1:PORT", in order.
    public var endpoints: [String] { members.map(\.endpoint) }

    /// Launches every member, then waits until each reports the cluster healthy.
    public init(size: Int = 3, binary: String = "/usr/bin/etcd", timeout: Duration = .seconds(30)) async throws {
        let ports = try (0..<size).map { _ in (try freeLoopbackPort(), try freeLoopbackPort()) }
        let names = (0..<size).map { "m\($0)-\(ports[0].0)" }
        let initial = zip(names, ports).map { "\($0)=http://127.0.0.1:\($1.1)" }.joined(separator: ",")
        let token = "shoal-\(UUID().uuidString)"
        members = try zip(names, ports).map { name, port in
            try EtcdTestServer(binary: binary, name: name, clientPort: port.0, peerPort: port.1,
                               initialCluster: initial, clusterToken: token)
        }
        for member in members { try member.launch() }
        for member in members { try await member.waitUntilHealthy(timeout: timeout) }
    }

    /// Stops every member.
    public func stop() {
        for member in members { member.stop() }
    }
}

public struct EtcdTestServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then closed).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw EtcdTestServerError("socket() failed") }
    defer { close(fd) }
    var address = loopback(port: 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw EtcdTestServerError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

private func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return address
}

/// Sends `request` to 127.0.0.1:port and reads the reply until the peer closes
/// (HTTP/1.0), with a 2 s timeout each way; "" if anything fails.
private func httpExchange(_ port: Int, _ request: String) -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = loopback(port: UInt16(port))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return "" }
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return "" }
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        reply.append(contentsOf: buffer[..<n])
    }
    return String(decoding: reply, as: UTF8.self)
}
