import Coordinator
import Dispatch
import Synchronization
import Testing

/// A wall clock the test moves by hand.
final class ManualClock: Sendable {
    private let millis: Mutex<UInt64>
    init(_ start: UInt64) { millis = Mutex(start) }
    func set(_ value: UInt64) { millis.withLock { $0 = value } }
    var read: HybridLogicalClock.WallClock { { self.millis.withLock { $0 } } }
}

@Suite struct HybridLogicalClockTests {
    @Test func layoutIs48BitsOfMillisAnd16OfCounter() {
        let v = HLCVersion(physicalMillis: 1_700_000_000_123, logical: 7)
        #expect(v.rawValue == 1_700_000_000_123 << 16 | 7)
        #expect(v.physicalMillis == 1_700_000_000_123)
        #expect(v.logical == 7)
        #expect(HLCVersion(physicalMillis: 5, logical: 0) > HLCVersion(physicalMillis: 4, logical: .max))
    }

    @Test func followsTheWallClockForward() {
        let wall = ManualClock(1000)
        let clock = HybridLogicalClock(wallClock: wall.read)
        #expect(clock.next() == HLCVersion(physicalMillis: 1000, logical: 0))
        #expect(clock.next() == HLCVersion(physicalMillis: 1000, logical: 64))  // issuer 0: steps of 64
        wall.set(2000)
        #expect(clock.next() == HLCVersion(physicalMillis: 2000, logical: 0))
    }

    @Test func neverGoesBackwardsWhenTheWallClockDoes() {
        let wall = ManualClock(5000)
        let clock = HybridLogicalClock(wallClock: wall.read)
        let before = clock.next()
        wall.set(1000)  // NTP step back
        let after = [clock.next(), clock.next()]
        #expect(after[0] > before && after[1] > after[0])
        #expect(after[0].physicalMillis == 5000)
        wall.set(5001)
        #expect(clock.next() == HLCVersion(physicalMillis: 5001, logical: 0))
    }

    @Test func counterOverflowBorrowsTheNextMillisecond() {
        let wall = ManualClock(10)
        let clock = HybridLogicalClock(start: HLCVersion(physicalMillis: 10, logical: .max - 127), wallClock: wall.read)
        #expect(clock.next() == HLCVersion(physicalMillis: 10, logical: .max - 63))
        #expect(clock.next() == HLCVersion(physicalMillis: 11, logical: 0))
        #expect(clock.next() == HLCVersion(physicalMillis: 11, logical: 64))
    }

    @Test func observeMovesPastASeenVersion() {
        let wall = ManualClock(1000)
        let clock = HybridLogicalClock(wallClock: wall.read)
        // A restarted coordinator learns that nodes hold versions from the future.
        let seen = HLCVersion(physicalMillis: 9000, logical: 42)
        clock.observe(seen)
        #expect(clock.next() == HLCVersion(physicalMillis: 9000, logical: 64))
        clock.observe(HLCVersion(physicalMillis: 1, logical: 0))  // never moves back
        #expect(clock.next() == HLCVersion(physicalMillis: 9000, logical: 128))
        #expect(clock.current == HLCVersion(physicalMillis: 9000, logical: 128))
    }

    /// Two coordinators on one wall clock, each observing the other's versions:
    /// their versions never collide and each one's strictly increase.
    @Test func issuersNeverCollide() {
        let wall = ManualClock(7000)
        let a = HybridLogicalClock(issuer: 1, wallClock: wall.read)
        let b = HybridLogicalClock(issuer: 2, wallClock: wall.read)
        var seen = Set<UInt64>()
        var lastA = HLCVersion.zero, lastB = HLCVersion.zero
        for i in 0..<1000 {
            if i % 7 == 0 { wall.set(7000 + UInt64(i / 7)) }
            let va = a.next(), vb = b.next()
            #expect(va.rawValue % 64 == 1 && vb.rawValue % 64 == 2)
            #expect(va > lastA && vb > lastB)
            lastA = va; lastB = vb
            #expect(seen.insert(va.rawValue).inserted && seen.insert(vb.rawValue).inserted)
            if i % 3 == 0 { a.observe(vb) } else { b.observe(va) }
        }
    }

    /// 8 threads × 20k calls on a clock that jumps around: every version is
    /// distinct and each thread sees its own versions strictly increase.
    @Test func strictlyIncreasingAcrossThreads() {
        let wall = ManualClock(1_000_000)
        let clock = HybridLogicalClock(wallClock: wall.read)
        let threads = 8, calls = 20_000
        let results = Mutex([[HLCVersion]](repeating: [], count: threads))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var mine: [HLCVersion] = []
            mine.reserveCapacity(calls)
            for i in 0..<calls {
                if i % 1000 == 0 { wall.set(1_000_000 + UInt64((t * 7 + i / 1000) % 13)) }  // forward and back
                if i % 3000 == 0 { clock.observe(HLCVersion(physicalMillis: 999_990, logical: 0)) }
                mine.append(clock.next())
            }
            results.withLock { $0[t] = mine }
        }
        let all = results.withLock { $0 }
        for mine in all {
            #expect(zip(mine, mine.dropFirst()).allSatisfy { $0 < $1 })
        }
        #expect(Set(all.joined()).count == threads * calls)
        #expect(clock.current == all.joined().max())
    }

    @Test func systemClockIsNearNow() {
        let clock = HybridLogicalClock()
        let v = clock.next()
        // 2024-01-01 < now < 2200-01-01: a sanity check of the unit, not a timing assertion.
        #expect(v.physicalMillis > 1_704_067_200_000 && v.physicalMillis < 7_258_118_400_000)
    }
}
