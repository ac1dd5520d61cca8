import ArgumentParser

struct BridgeLeakCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bridge-leakcheck", abstract: "Not written yet.")
    func run() async throws { throw ValidationError("not written yet") }
}
