import CVectorKernels
import Synchronization

/// A binary max-heap of (key, id) pairs on an unsafe, growable buffer. A min-heap by distance is this heap
/// keyed by the negated distance.
struct PairHeap {
    private(set) var keys: UnsafeMutablePointer<Float>
    private(set) var ids: UnsafeMutablePointer<UInt32>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        keys = .allocate(capacity: self.capacity)
        ids = .allocate(capacity: self.capacity)
    }

    func free() {
        keys.deallocate()
        ids.deallocate()
    }

    @inline(__always) mutating func removeAll() { count = 0 }
    @inline(__always) var isEmpty: Bool { count == 0 }
    @inline(__always) var topKey: Float { keys[0] }
    @inline(__always) var topId: UInt32 { ids[0] }

    private mutating func grow() {
        let newCapacity = capacity * 2
        let k = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity)
        let i = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
        k.update(from: keys, count: count)
        i.update(from: ids, count: count)
        keys.deallocate()
        ids.deallocate()
        keys = k
        ids = i
        capacity = newCapacity
    }

    @inline(__always)
    mutating func push(_ key: Float, _ id: UInt32) {
        if count == capacity { grow() }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if keys[parent] >= key { break }
            keys[i] = keys[parent]
            ids[i] = ids[parent]
            i = parent
        }
        keys[i] = key
        ids[i] = id
    }

    @inline(__always)
    mutating func pop() {
        count -= 1
        if count == 0 { return }
        let key = keys[count], id = ids[count]
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= count { break }
            if child + 1 < count && keys[child + 1] > keys[child] { child += 1 }
            if keys[child] <= key { break }
            keys[i] = keys[child]
            ids[i] = ids[child]
            i = child
        }
        keys[i] = key
        ids[i] = id
    }

    /// Checks the heap property (debug builds).
    func _checkInvariants() {
        for i in 1..<max(count, 1) { assert(keys[(i - 1) >> 1] >= keys[i], "heap order broken at \(i)") }
    }
}

/// Scratch state of one search: an epoch-tagged visited set and two heaps. Reused through `ContextPool`.
final class SearchContext {
    /// One tag per id; `visited[id] == tag` means seen in the current search. Reserved address space,
    /// so it covers every id without resizing.
    let visited: UnsafeMutablePointer<UInt16>
    private let capacity: Int
    private(set) var tag: UInt16 = 0
    /// Max-heap of the best results (key = distance).
    var results = PairHeap(capacity: 256)
    /// Max-heap of candidates to expand (key = −distance, so the nearest is on top).
    var candidates = PairHeap(capacity: 256)
    /// Highest id + 1 cleared on a tag wrap-around.
    var touchedLimit = 0
    /// Unvisited neighbours of the node being expanded (their vectors are prefetched before any distance).
    let batch = UnsafeMutablePointer<UInt32>.allocate(capacity: 1024)

    init(capacity: Int) {
        self.capacity = capacity
        visited = shoal_reserve(capacity * 2)!.bindMemory(to: UInt16.self, capacity: capacity)
    }

    deinit {
        shoal_unreserve(UnsafeMutableRawPointer(visited), capacity * 2)
        results.free()
        candidates.free()
        batch.deallocate()
    }

    /// Starts a new search over ids below `limit`: returns a fresh tag.
    @inline(__always)
    func nextTag(limit: Int) -> UInt16 {
        touchedLimit = max(touchedLimit, limit)
        if tag == UInt16.max {
            visited.update(repeating: 0, count: touchedLimit)
            tag = 0
        }
        tag &+= 1
        results.removeAll()
        candidates.removeAll()
        return tag
    }
}

/// A lock-protected stack of reusable search contexts (held only while taking or returning one).
final class ContextPool: @unchecked Sendable {
    private let lock = Lock()
    private var free: [UInt] = []  // retained SearchContext addresses, guarded by `lock`
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    deinit {
        do {
            for p in free { Unmanaged<SearchContext>.fromOpaque(UnsafeRawPointer(bitPattern: p)!).release() }
        }
    }

    @inline(__always)
    func withContext<R>(_ body: (SearchContext) throws -> R) rethrows -> R {
        let raw = lock.withLock { free.popLast() }
        let ctx = raw.map { Unmanaged<SearchContext>.fromOpaque(UnsafeRawPointer(bitPattern: $0)!).takeRetainedValue() } ?? SearchContext(capacity: capacity)
        defer {
            let p = UInt(bitPattern: Unmanaged.passRetained(ctx).toOpaque())
            lock.withLock { free.append(p) }
        }
        return try body(ctx)
    }
}
