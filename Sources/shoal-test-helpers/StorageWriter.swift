import ArgumentParser

struct StorageWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "storage-writer", abstract: "Not written yet.")
    func run() async throws { throw ValidationError("not written yet") }
}
