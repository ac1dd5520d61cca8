import ArgumentParser
import Foundation
import ShoalProto
import ShoalRPC

/// `shoal admin status`: the move tasks and how far they got.
struct AdminStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show move tasks: state, phase and records copied.",
        discussion: """
            Without TASK_ID: the pending and running tasks, newest first (--all: finished
            ones too). STATE is pending, running, done, failed or rolled_back; PHASE is
            create_replica, copy_records, catch_up, switch_reads or drop_source.
            --watch follows the unfinished tasks until they end (exit 3 if one fails).

            Examples:
              shoal admin status
              shoal admin status move-7 --watch
              shoal admin status --all --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "One task's id (default: every task).") var taskID: String?
    @Flag(help: "Also list finished tasks.") var all = false
    @Flag(help: "Follow the unfinished tasks until they end.") var watch = false

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let names = try await client.nodeNames()
        var tasks: [Shoal_V1_MoveTask] = []
        var followed = [taskID].compactMap { $0 }
        if !watch || taskID == nil {
            tasks = try await client.call(AdminRPC.taskStatus, .with {
                $0.taskID = taskID ?? ""
                $0.includeFinished = all
            }).tasks
            followed = watch ? tasks.filter { !$0.state.isFinished }.map(\.taskID) : []
            if followed.isEmpty { return show(tasks, names: names, json: client.json) }
        }
        let final = try await TaskWatcher(client: client, names: names).follow(followed)
        if client.json {
            // The listing, with the followed tasks as they ended (just those when watching one task).
            let ended = Dictionary(final.map { ($0.taskID, $0) }, uniquingKeysWith: { a, _ in a })
            printJSON((tasks.isEmpty ? final : tasks.map { ended[$0.taskID] ?? $0 }).map(taskObject))
        }
        try finishWaiting(final, names: names, json: client.json)
    }

    private func show(_ tasks: [Shoal_V1_MoveTask], names: NodeNames, json: Bool) {
        if json { return printJSON(tasks.map(taskObject)) }
        if tasks.isEmpty { print(all ? "no tasks" : "no running tasks") } else { printTable(taskHeader, tasks.map { taskRow($0, names: names) }) }
    }
}

/// `shoal admin cancel`: stops a move and rolls it back.
struct AdminCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a pending or running move; placement returns to what it was.",
        discussion: """
            Refused (exit 2) once reads have switched to the target (the move then
            finishes) or when the task has finished; exit 2 for an unknown task.

            Examples:
              shoal admin cancel move-7
              shoal admin cancel move-7 --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Argument(help: "The task's id (see status).") var taskID: String

    func run() async throws {
        let client = try await AdminClient(coordinator)
        let task = try await client.call(AdminRPC.cancelMove, .with { $0.taskID = taskID }).task
        if client.json { return printJSON(taskObject(task)) }
        let names = try await client.nodeNames()
        printTable(taskHeader, [taskRow(task, names: names)])
        print(task.state.isFinished ? "cancelled \(task.taskID): \(task.state.name)"
                                    : "cancelling \(task.taskID): rolling back (follow with: shoal admin status \(task.taskID) --watch)")
    }
}

/// Polls TaskStatus every 0.5 s until the tasks have finished. On a terminal it redraws
/// one progress line per task in place; otherwise it prints a line when a task's state or
/// phase changes; with --json it prints nothing.
struct TaskWatcher {
    let client: AdminClient
    let names: NodeNames
    var interval = Duration.milliseconds(500)

    /// The tasks' final states, in the order of `ids`. A task in `shown` was printed
    /// already: its first change line waits for a change. A task that failed and was
    /// retried as another (`retried_as`) is followed on as that one.
    func follow(_ ids: [String], shown: [Shoal_V1_MoveTask] = []) async throws -> [Shoal_V1_MoveTask] {
        let terminal = !client.json && isatty(STDOUT_FILENO) == 1
        // task id → the state and phase last printed
        var printed = Dictionary(shown.map { ($0.taskID, "\($0.state.name) \($0.phase.name)") }, uniquingKeysWith: { a, _ in a })
        var drawn = 0
        var ids = ids
        while true {
            var tasks: [Shoal_V1_MoveTask] = []
            for i in ids.indices {
                var task = try await fetch(ids[i])
                while task.state.isFinished, !task.retriedAs.isEmpty {
                    if !client.json {
                        if terminal { drawn = 0 }  // the line stays; the successor draws below it
                        print(changeLine(task, names: names) + "; retried as \(task.retriedAs)")
                    }
                    ids[i] = task.retriedAs
                    task = try await fetch(ids[i])
                }
                tasks.append(task)
            }
            if terminal {
                redraw(tasks.map { progressLine($0, names: names) }, over: drawn)
                drawn = tasks.count
            } else if !client.json {
                for task in tasks where printed[task.taskID] != "\(task.state.name) \(task.phase.name)" {
                    printed[task.taskID] = "\(task.state.name) \(task.phase.name)"
                    print(changeLine(task, names: names))
                }
            }
            fflush(nil)
            if tasks.allSatisfy(\.state.isFinished) { return tasks }
            try await Task.sleep(for: interval)
        }
    }

    private func fetch(_ id: String) async throws -> Shoal_V1_MoveTask {
        let reply = try await client.call(AdminRPC.taskStatus, .with { $0.taskID = id })
        guard let task = reply.tasks.first(where: { $0.taskID == id }) else { throw badInput("unknown task \(id)") }
        return task
    }

    /// Moves the cursor up over the `over` lines drawn last time and draws `lines` in their
    /// place, each cut to the terminal's width so that none wraps.
    private func redraw(_ lines: [String], over: Int) {
        let width = terminalColumns() - 1
        var out = over > 0 ? "\u{1B}[\(over)A" : ""
        for line in lines { out += "\r\u{1B}[2K" + line.prefix(width) + "\n" }
        print(out, terminator: "")
    }
}

/// The width of the terminal on stdout; 80 if unknown.
private func terminalColumns() -> Int {
    var size = winsize()
    guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
    return Int(size.ws_col)
}

/// Prints the closing lines of a wait (to stderr with --json) and exits 3 if a task did not end DONE.
func finishWaiting(_ tasks: [Shoal_V1_MoveTask], names: NodeNames, json: Bool) throws {
    let outcome = waitOutcome(tasks, names: names)
    for line in outcome.lines {
        if !json { print(line) } else if outcome.status != 0 { printError("shoal admin: \(line)") }
    }
    if outcome.status != 0 { throw ExitCode(outcome.status) }
}
