/// A binary min-heap of cursors, one per non-empty list, ordered by the hit
/// each cursor points at (`TopKMerge.precedes`). Used only by `TopKMerge`.
struct HeadHeap<Hit: MergeableHit> {
    private let lists: [[Hit]]
    /// (list, position) pairs; `cursors[0]` points at the smallest head.
    private var cursors: [(list: Int, position: Int)]

    init(lists: [[Hit]]) {
        self.lists = lists
        cursors = lists.indices.filter { !lists[$0].isEmpty }.map { ($0, 0) }
        for i in stride(from: cursors.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
        _checkInvariants()
    }

    /// Removes and returns the smallest head, advancing its list; nil when
    /// every list is exhausted.
    mutating func popMin() -> Hit? {
        guard let top = cursors.first else { return nil }
        let hit = lists[top.list][top.position]
        if top.position + 1 < lists[top.list].count {
            cursors[0].position += 1
        } else {
            cursors[0] = cursors[cursors.count - 1]
            cursors.removeLast()
        }
        if !cursors.isEmpty { siftDown(0) }
        _checkInvariants()
        return hit
    }

    private func head(_ i: Int) -> Hit { lists[cursors[i].list][cursors[i].position] }

    private func less(_ i: Int, _ j: Int) -> Bool { TopKMerge.precedes(head(i), head(j)) }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            guard left < cursors.count else { return }
            let right = left + 1
            let child = right < cursors.count && less(right, left) ? right : left
            guard less(child, i) else { return }
            cursors.swapAt(i, child)
            i = child
        }
    }

    /// Debug builds: every cursor is in bounds and no child precedes its parent.
    func _checkInvariants() {
        #if DEBUG
        for i in cursors.indices {
            assert(cursors[i].position < lists[cursors[i].list].count)
            if i > 0 { assert(!less(i, (i - 1) / 2), "heap order broken at \(i)") }
        }
        #endif
    }
}
