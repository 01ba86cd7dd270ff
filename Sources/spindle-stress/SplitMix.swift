// The tool's one source of randomness. Every randomized choice of a run (cycle lengths, tree
// shapes, message counts, delays, which tasks get cancelled and when) comes from a SplitMix64
// generator whose seed is derived from the run's seed and the position of the choice (cycle,
// workload, lane, round), so a run started with the same `--seed` makes the same choices. The
// interleaving of threads is not replayable: the same seed reproduces the workload, and a
// failure that needs a rare schedule may need the workload run a few times more.

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
struct SplitMix: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for one position of the run: `parts` are mixed into `seed` one by one.
    init(seed: UInt64, _ parts: UInt64...) {
        var state = seed
        for part in parts {
            var mixer = SplitMix(seed: state ^ (part &* 0x9E37_79B9_7F4A_7C15))
            state = mixer.next()
        }
        self.state = state
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An integer in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    /// True with probability 1/`n`.
    mutating func oneIn(_ n: Int) -> Bool { Int.random(in: 0..<n, using: &self) == 0 }
}
