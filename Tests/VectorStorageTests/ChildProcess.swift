import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawn`, its stdout on a pipe we read line by line
/// with `poll` timeouts, its stderr in a file. Killed with SIGKILL and reaped in `deinit`
/// if the test did not do it, so a failing test never leaves a writer running.
final class ChildProcess {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let pid: pid_t
    private let stdoutFD: Int32
    private var buffer = [UInt8]()
    private var reachedEOF = false
    private var exitStatus: Int32?

    init(executable: String, arguments: [String], stderrPath: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure(description: "pipe failed: errno \(errno)") }
        let (readEnd, writeEnd) = (fds[0], fds[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, STDOUT_FILENO)
        posix_spawn_file_actions_addclose(&actions, readEnd)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environment.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, argv, environment)
        close(writeEnd)  // the child holds the only write end: EOF when it dies
        guard result == 0 else {
            close(readEnd)
            throw Failure(description: "posix_spawn \(executable) failed: \(String(cString: strerror(result)))")
        }
        pid = child
        stdoutFD = readEnd
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = reap()
        }
        close(stdoutFD)
    }

    /// The next line of stdout, waiting until `timeout` has passed; nil at EOF.
    /// Throws if no full line arrives in time.
    func readLine(timeout: Duration) throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if reachedEOF { return nil }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw Failure(description: "no line from child \(pid) within \(timeout)") }
            var pfd = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let (seconds, attoseconds) = remaining.components
            let milliseconds = Int32(min(seconds * 1_000 + attoseconds / 1_000_000_000_000_000 + 1, 1_000))
            let ready = poll(&pfd, 1, milliseconds)
            if ready < 0 && errno != EINTR { throw Failure(description: "poll failed: errno \(errno)") }
            if ready > 0 { readAvailable() }
        }
    }

    private func readAvailable() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, $0.count) }
        if count > 0 {
            buffer += chunk[..<count]
        } else if count == 0 {
            reachedEOF = true
        }
    }

    /// Sends SIGKILL and waits for the child to die. Returns the raw wait status.
    @discardableResult
    func killAndReap() -> Int32 {
        if let exitStatus { return exitStatus }
        kill(pid, SIGKILL)
        return reap()
    }

    /// Waits for the child to exit on its own; returns its exit code, or nil if a signal ended it.
    func waitForExit() -> Int32? {
        let status = exitStatus ?? reap()
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil
    }

    /// Lines already read plus whatever the child wrote before it died (reads to EOF).
    func drainLines() -> [String] {
        var lines = [String]()
        while let line = try? readLine(timeout: .seconds(5)) { lines.append(line) }
        return lines
    }

    private func reap() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exitStatus = status
        return status
    }
}
