import ArgumentParser
import VectorCore

@main
struct Shoal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "Shoal: a distributed, sharded vector store.",
        version: ShoalVersion.current,
        subcommands: [ServeCommand.self, CoordinatorCommand.self, NodeCommand.self, CollectionsCommand.self, SearchCommand.self, ClassifyCommand.self, EvaluateCommand.self, HealthCommand.self, AdminCommand.self]
    )
}
