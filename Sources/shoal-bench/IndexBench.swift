import ArgumentParser

struct IndexBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "index", abstract: "HNSW index against a dataset folder (not written yet).")
    func run() async throws { throw ValidationError("the index benchmark is not written yet") }
}
