import ArgumentParser

/// Child processes started by the test suite (crash writers, leak-check drivers). Not for users.
@main
struct TestHelpers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-test-helpers",
        abstract: "Processes the test suite starts and kills.",
        subcommands: [StorageWriter.self, BridgeLeakCheck.self, CatalogWriter.self]
    )
}
