@testable import Coordinator
import Testing
import VectorCore

/// A replica as the tests model it: what it holds per id.
typealias Held = [String: RecordState]

/// Sorted live entries of a modelled replica (what a scan yields).
func liveEntries(_ replica: Held) -> [LiveEntry] {
    ReplicaDiff.sortedByID(replica.compactMap { id, state in state.liveVersion.map { LiveEntry(id: id, version: $0) } })
}

/// The differing ids of modelled replicas, repaired the way RepairCollection does:
/// each id's winning record written to its targets, where a replica keeps a record
/// only if its version is newer than the one it holds (the node's rule).
func repaired(_ replicas: [Held]) -> [Held] {
    var replicas = replicas
    for id in ReplicaDiff.differingIDs(replicas.map(liveEntries)) {
        let states = replicas.map { $0[id] ?? .absent }
        guard let fix = ReplicaDiff.repair(states) else { continue }
        for target in fix.targets where states[fix.source].version > (replicas[target][id]?.version ?? 0) {
            replicas[target][id] = states[fix.source]
        }
    }
    return replicas
}

func digests(_ replicas: [Held]) -> Set<UInt64> { Set(replicas.map { ReplicaDiff.digest(liveEntries($0)) }) }

@Suite struct ReplicaDiffTests {
    let base: Held = ["a": .live(3), "b": .live(5), "c": .deleted(7), "é": .live(2)]

    @Test func equalReplicasHaveNoDifferenceAndOneDigest() {
        let replicas = [base, base]
        #expect(ReplicaDiff.differingIDs(replicas.map(liveEntries)).isEmpty)
        #expect(digests(replicas).count == 1)
        #expect(ReplicaDiff.repair([.live(3), .live(3)]) == nil)
    }

    @Test func aMissingPointDiffersAndIsCopied() {
        var other = base
        other["b"] = nil
        #expect(ReplicaDiff.differingIDs([base, other].map(liveEntries)) == ["b"])
        #expect(digests([base, other]).count == 2)
        let fix = ReplicaDiff.repair([.live(5), .absent])
        #expect(fix?.source == 0 && fix?.targets == [1])
        let after = repaired([base, other])
        #expect(after[1]["b"] == .live(5))
        #expect(digests(after).count == 1)
    }

    @Test func aNewerVersionWins() {
        var newer = base
        newer["a"] = .live(9)
        #expect(ReplicaDiff.differingIDs([base, newer].map(liveEntries)) == ["a"])
        let fix = ReplicaDiff.repair([.live(3), .live(9)])
        #expect(fix?.source == 1 && fix?.targets == [0])
        #expect(repaired([base, newer]).allSatisfy { $0["a"] == .live(9) })
    }

    @Test func aTombstoneAgainstALivePointDiffersAndTheNewerWins() {
        var deleted = base
        deleted["b"] = .deleted(8)
        #expect(ReplicaDiff.differingIDs([base, deleted].map(liveEntries)) == ["b"])
        #expect(!ReplicaDiff.agree([.live(5), .deleted(8)]))
        #expect(ReplicaDiff.repair([.live(5), .deleted(8)])?.targets == [0])
        #expect(repaired([base, deleted]).allSatisfy { $0["b"] == .deleted(8) })
        // An older tombstone loses to a newer point: the point is copied over it.
        #expect(ReplicaDiff.repair([.live(9), .deleted(8)])?.targets == [1])
        // At one version (never written so), the tombstone wins.
        #expect(ReplicaDiff.winner([.live(8), .deleted(8)]) == 1)
    }

    @Test func aTombstoneAgainstNoRecordIsEqual() {
        var collected = base
        collected["c"] = nil
        #expect(ReplicaDiff.agree([.deleted(7), .absent]))
        #expect(ReplicaDiff.differingIDs([base, collected].map(liveEntries)).isEmpty)
        #expect(digests([base, collected]).count == 1)
        #expect(ReplicaDiff.repair([.deleted(7), .absent]) == nil)
    }

    @Test func threeReplicasConvergeOnTheNewestOfEach() {
        var a = base, b = base, c = base
        a["x"] = .live(11)                  // only on a
        b["a"] = .live(12)                  // newer on b
        c["b"] = .deleted(13)               // deleted on c, later than b's write
        b["c"] = nil                        // tombstone collected on b: still equal
        let replicas = [a, b, c]
        #expect(ReplicaDiff.differingIDs(replicas.map(liveEntries)) == ["a", "b", "x"])
        #expect(ReplicaDiff.repair([.live(11), .absent, .absent])?.targets == [1, 2])
        // The tombstone goes to both replicas still holding the point; an absent one
        // would get it too (it does not hold the winning record).
        #expect(ReplicaDiff.repair([.live(5), .live(5), .deleted(13)])?.targets == [0, 1])
        #expect(ReplicaDiff.repair([.live(5), .absent, .deleted(13)])?.targets == [0, 1])
        let after = repaired(replicas)
        #expect(ReplicaDiff.differingIDs(after.map(liveEntries)).isEmpty)
        #expect(digests(after).count == 1)
        #expect(after.allSatisfy { $0["x"] == .live(11) && $0["a"] == .live(12) && $0["b"] == .deleted(13) })
    }

    @Test func differencesAreFoundInByteOrderAcrossUnevenLists() {
        // "é" (U+00E9) sorts after "z" by UTF-8 bytes; decomposed "é" is another id.
        let one = [LiveEntry(id: "a", version: 1), LiveEntry(id: "z", version: 1), LiveEntry(id: "\u{E9}", version: 1)]
        let two = [LiveEntry(id: "a", version: 1), LiveEntry(id: "e\u{301}", version: 1), LiveEntry(id: "z", version: 2)]
        #expect(ReplicaDiff.sortedByID(one.reversed()) == one)
        #expect(ReplicaDiff.differingIDs([one, two]).map { Array($0.utf8) } == [Array("e\u{301}".utf8), Array("z".utf8), Array("\u{E9}".utf8)])
        #expect(ReplicaDiff.differingIDs([one, []]).count == 3)
        #expect(ReplicaDiff.differingIDs([one]).isEmpty)
    }

    @Test func theDigestIsStableAndCoversIdsAndVersions() {
        let entries = [LiveEntry(id: "a", version: 1), LiveEntry(id: "b", version: 2)]
        #expect(ReplicaDiff.digest([]) == FNV1a64.offsetBasis)
        #expect(ReplicaDiff.hex(ReplicaDiff.digest(entries)) == ReplicaDiff.hex(ReplicaDiff.digest(entries)))
        #expect(ReplicaDiff.digest(entries) != ReplicaDiff.digest([LiveEntry(id: "a", version: 1), LiveEntry(id: "b", version: 3)]))
        // The length prefix keeps ("ab", "c") apart from ("a", "bc").
        #expect(ReplicaDiff.digest([LiveEntry(id: "ab", version: 1), LiveEntry(id: "c", version: 1)])
                != ReplicaDiff.digest([LiveEntry(id: "a", version: 1), LiveEntry(id: "bc", version: 1)]))
        #expect(ReplicaDiff.hex(0x1f) == "000000000000001f")
        // Pinned: the digest of one point "p1" at version 7, computed independently.
        #expect(ReplicaDiff.hex(ReplicaDiff.digest([LiveEntry(id: "p1", version: 7)])) == pinnedDigest)
    }

    @Test func reReadIdsReplaceWhatTheScanSaw() {
        let scanned = [LiveEntry(id: "a", version: 1), LiveEntry(id: "b", version: 1), LiveEntry(id: "c", version: 1)]
        let settled = ReplicaDiff.settled(scanned, reread: [UTF8Key("b"): .deleted(4), UTF8Key("c"): .live(5), UTF8Key("d"): .live(6)])
        #expect(settled == [LiveEntry(id: "a", version: 1), LiveEntry(id: "c", version: 5), LiveEntry(id: "d", version: 6)])
    }

    @Test func aShardComparisonNamesWhoIsBehind() {
        var comparison = ShardComparison(.with { $0.replicas = [.with { $0.nodeID = "n1" }, .with { $0.nodeID = "n2" }, .with { $0.nodeID = "n3" }] })
        comparison.differing = [("x", [.live(11), .absent, .live(11)])]
        #expect(ShardComparison.behind(comparison.differing[0].states) == [1])
        #expect(!comparison.identical && !comparison.matches(0) && !comparison.matches(1))
        comparison.errors[2] = "down"
        comparison.differing = [("x", [.live(11), .live(4), nil])]
        #expect(ShardComparison.behind(comparison.differing[0].states) == [1])
        let proto = comparison.proto
        #expect(proto.replicas.map(\.behind) == [0, 1, 0] && proto.replicas[2].unreachable)
        #expect(proto.sample[0].replicas.map(\.nodeID) == ["n1", "n2"])
    }
}

/// FNV-1a 64 of 02 00 00 00 "p1" 07 00 00 00 00 00 00 00, computed outside Swift (Python).
let pinnedDigest = "35fb8ab2f1e4e3bb"
