import ArgumentParser

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "Shoal: a distributed, sharded vector store.",
        subcommands: []
    )
}
