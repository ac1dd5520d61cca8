import ArgumentParser
import Foundation
import ShoalProto
import ShoalRPC

/// Options shared by `shoal classify` and `shoal evaluate`.
struct VoteOptions: ParsableArguments {
    @Option(help: "Neighbours that vote.") var k: UInt32 = 5
    @Option(help: "The metadata field holding each point's label (a string or an int).") var labelField = "label"
    @Option(help: "majority or distance_weighted.") var vote = "majority"
    @Option(help: ArgumentHelp("Only points whose FIELD equals VALUE (an int if it reads as one, else a string); repeat for several.",
                               valueName: "FIELD=VALUE")) var `where`: [String] = []
    @Flag(help: "Exhaustive neighbours (exact results) instead of HNSW.") var exact = false

    var proto: Shoal_V1_Vote {
        get throws {
            switch vote {
            case "majority": return .majority
            case "distance_weighted": return .distanceWeighted
            default: throw ValidationError("--vote must be majority or distance_weighted, got \(vote)")
            }
        }
    }

    /// The --where equalities, all of them; nil for none.
    var filter: Shoal_V1_Filter? {
        get throws {
            let conditions = try `where`.map { clause -> Shoal_V1_Filter in
                guard let eq = clause.firstIndex(of: "="), eq != clause.startIndex else {
                    throw ValidationError("--where takes FIELD=VALUE, got \(clause)")
                }
                let field = String(clause[..<eq])
                let text = String(clause[clause.index(after: eq)...])
                return .with {
                    $0.condition = .with {
                        $0.field = field
                        $0.eq = Int64(text).map { number in .with { $0.intValue = number } } ?? .with { $0.stringValue = text }
                    }
                }
            }
            if conditions.count <= 1 { return conditions.first }
            return .with { $0.allOf = .with { $0.filters = conditions } }
        }
    }
}

/// `shoal classify`: the label of a vector by its nearest neighbours' labels.
struct ClassifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify a vector by the labels of its k nearest points.",
        discussion: """
            The label with the highest score wins (majority: share of the k votes;
            distance_weighted: share of the weights 1 / (distance + 1e-6)); a tie goes to
            the label of the nearest neighbour among the tied ones.

            Examples:
              shoal classify --collection parts --vector-file photo.json --k 7 --where part=3
              shoal classify --collection faces --vector 0.1,0.2,0.3,0.4 --label-field person --json
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Option(help: "The collection.") var collection: String
    @Option(help: "The vector, comma-separated numbers.") var vector: String?
    @Option(help: "A file holding the vector as a JSON array of numbers.") var vectorFile: String?
    @OptionGroup var voting: VoteOptions

    func validate() throws {
        if (vector == nil) == (vectorFile == nil) { throw ValidationError("give exactly one of --vector or --vector-file") }
    }

    func run() async throws {
        let query = try queryVector(vector, file: vectorFile)
        let filter = try voting.filter
        let rule = try voting.proto
        let reply = try await coordinator.call(VectorStoreRPC.classify, .with {
            $0.collection = collection
            $0.vector = query
            $0.k = voting.k
            $0.labelField = voting.labelField
            $0.vote = rule
            $0.exact = voting.exact
            if let filter { $0.filter = filter }
        })
        if coordinator.json {
            return printJSON([
                "label": jsonValue(reply.label),
                "scores": reply.scores.map { ["label": jsonValue($0.label), "score": $0.score, "votes": $0.votes] as [String: Any] },
                "neighbors": reply.neighbors.map { ["id": $0.id, "distance": $0.distance, "label": $0.metadata[voting.labelField].map(jsonValue) ?? NSNull()] as [String: Any] },
            ])
        }
        print("label: \(describe(reply.label))")
        printTable(["LABEL", "SCORE", "VOTES"], reply.scores.map { [describe($0.label), String(format: "%.4f", $0.score), "\($0.votes)"] })
        printTable(["#", "NEIGHBOUR", "DISTANCE", voting.labelField.uppercased()], reply.neighbors.enumerated().map { i, hit in
            ["\(i + 1)", hit.id, String(format: "%.4f", hit.distance), hit.metadata[voting.labelField].map(describe) ?? "-"]
        })
    }
}

/// `shoal evaluate`: leave-one-out accuracy of the k-NN classifier over stored points.
struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Leave-one-out accuracy of k-NN classification over a collection's points.",
        discussion: """
            Each stored point (all, or --sample of them) is classified by its k nearest
            other points (never itself); with --group-field, only among points with its
            own value of that field. Prints accuracy, precision and recall per label,
            and the most frequent confusions.

            Example:
              shoal evaluate --collection parts --label-field quality --group-field part --k 5
            """)

    @OptionGroup var coordinator: CoordinatorAddress
    @Option(help: "The collection.") var collection: String
    @OptionGroup var voting: VoteOptions
    @Option(help: "Classify each point only among points with its own value of this field.") var groupField: String?
    @Option(help: "Evaluate this many points (a stable sample) instead of all.") var sample: UInt32?
    @Option(help: "Confusions to list.") var top: UInt32 = 10

    func run() async throws {
        let filter = try voting.filter
        let rule = try voting.proto
        var request = Shoal_V1_EvaluateClassifierRequest.with {
            $0.collection = collection
            $0.labelField = voting.labelField
            $0.k = voting.k
            $0.vote = rule
            $0.exact = voting.exact
            $0.groupField = groupField ?? ""
            $0.sample = sample ?? 0
            $0.topConfusions = top
            $0.pageSize = 1_000
            if let filter { $0.filter = filter }
        }
        // A page per call, each passing on what the pages before counted; a progress line on a terminal.
        let terminal = isatty(STDERR_FILENO) == 1
        var reply = try await coordinator.call(VectorStoreRPC.evaluateClassifier, request)
        while true {
            if terminal { FileHandle.standardError.write(Data("\revaluating: \(reply.evaluated + reply.skipped)/\(reply.total) points".utf8)) }
            guard !reply.nextPageToken.isEmpty else { break }
            request.pageToken = reply.nextPageToken
            request.tally = reply.tally
            request.skipped = reply.skipped
            reply = try await coordinator.call(VectorStoreRPC.evaluateClassifier, request)
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        if coordinator.json {
            return printJSON([
                "accuracy": reply.accuracy, "evaluated": reply.evaluated, "correct": reply.correct, "skipped": reply.skipped,
                "per_label": reply.perLabel.map { ["label": jsonValue($0.label), "precision": $0.precision, "recall": $0.recall, "support": $0.support] as [String: Any] },
                "confusions": reply.confusions.map { ["actual": jsonValue($0.actual), "predicted": jsonValue($0.predicted), "count": $0.count] as [String: Any] },
            ])
        }
        print(String(format: "accuracy %.4f (%llu of %llu points; %llu skipped)", reply.accuracy, reply.correct, reply.evaluated, reply.skipped))
        printTable(["LABEL", "PRECISION", "RECALL", "SUPPORT"], reply.perLabel.map {
            [describe($0.label), String(format: "%.4f", $0.precision), String(format: "%.4f", $0.recall), "\($0.support)"]
        })
        if !reply.confusions.isEmpty {
            printTable(["ACTUAL", "PREDICTED", "COUNT"], reply.confusions.map { [describe($0.actual), describe($0.predicted), "\($0.count)"] })
        }
    }
}
