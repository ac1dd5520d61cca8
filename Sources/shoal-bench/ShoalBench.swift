import ArgumentParser

/// Benchmarks: `swift run -c release shoal-bench <subcommand>`. Figures go in issue notes, never in tests.
@main
struct ShoalBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-bench",
        abstract: "Measure Shoal's components.",
        subcommands: [IndexBench.self, BridgeBench.self, NodeBench.self, PayloadBench.self]
    )
}
