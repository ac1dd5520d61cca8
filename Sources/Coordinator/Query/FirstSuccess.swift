import Synchronization
import VectorCore

/// A race for the first success among `count` results offered from any task: the
/// waiting continuation resumes once, with the first success, or with nil once every
/// result was a failure.
final class FirstSuccess<R: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<R?, Never>?
        var left: Int
        var done = false
    }

    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(left: count)) }

    /// Sets the continuation to resume (before any offer); resumes it at once with nil
    /// when there is nothing to wait for.
    func start(_ continuation: CheckedContinuation<R?, Never>) {
        let now = state.withLock { s -> Bool in
            guard s.left > 0 else { s.done = true; return true }
            s.continuation = continuation
            return false
        }
        if now { continuation.resume(returning: nil) }
    }

    func offer(_ result: Result<R, ShoalError>) {
        let resume = state.withLock { s -> (CheckedContinuation<R?, Never>, R?)? in
            s.left -= 1
            guard !s.done, let continuation = s.continuation else { return nil }
            if case .success(let value) = result {
                s.done = true
                return (continuation, value)
            }
            if s.left == 0 {
                s.done = true
                return (continuation, nil)
            }
            return nil
        }
        if let (continuation, value) = resume { continuation.resume(returning: value) }
    }
}

extension Result {
    /// The error of a failure; nil for a success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
