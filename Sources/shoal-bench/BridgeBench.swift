import ArgumentParser

struct BridgeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bridge", abstract: "gRPC bridge round trips (not written yet).")
    func run() async throws { throw ValidationError("the bridge benchmark is not written yet") }
}
