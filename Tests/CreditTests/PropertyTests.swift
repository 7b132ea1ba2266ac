import Foundation
import PropertyBased
import Testing
@testable import Credit

/// Random batches: small alphabets so responses share prefixes, every optional field a method may
/// need, groups of 1–6 responses of 0–8 tokens.
struct RandomBatch {
    var rng: Xorshift

    init(seed: Int) { rng = Xorshift(seed: UInt64(seed) &+ 1) }

    mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func unit() -> Double { Double(rng.next() % 10_000) / 10_000 }

    mutating func trajectory() -> Trajectory {
        let n = int(9)
        let tokens = (0..<n).map { _ in int(3) }
        var t = Trajectory(tokens: tokens, reward: Double(int(3)) / 2)
        t.entropies = (0..<n).map { _ in unit() * 2 }
        t.values = (0..<n).map { _ in unit() }
        t.stepRewards = n == 0 ? [] : [StepReward(index: int(n), reward: unit() - 0.5)]
        let turns = Swift.max(1, Swift.min(n, 1 + int(3)))
        t.states = (0..<turns).map { k in StateMark(index: k, key: "s\(int(3))") }
        return t
    }

    mutating func batch(groups: Int) -> CreditBatch {
        CreditBatch(groups: (0..<groups).map { g in
            let trajs = (0..<(1 + int(6))).map { _ in trajectory() }
            let longest = trajs.map(\.count).max() ?? 0
            return Group(id: "g\(g)", trajectories: trajs, positionScores: (0..<longest).map { _ in unit() })
        }, progress: unit())
    }
}

struct Xorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9 : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

func shuffled<T>(_ x: [T], _ perm: [Int]) -> [T] { perm.map { x[$0] } }

@Suite struct PropertyTests {
    static let methods: [CreditConfig] = [
        .grpo(.init()), .grpo(.init(std: .biased, scale: .batch)), .rloo(.init()), .reinforcePP(.init()),
        .reinforcePP(.init(baseline: .none, gamma: 0.9)), .gae(.init(whiten: true)), .tempo(.init(valueSource: .raw)),
        .tempo(.init(valueSource: .normalized)), .pure(.init()), .pure(.init(baseline: .token)), .gigpo(.init()),
        .hapo(.init()), .twGRPO(.init()), .hicra(.init(grams: [[0, 1]])),
        .d3s(.init(base: .tempo(.init()), sampleKeep: 0.5, tokenKeep: 0.5)),
    ]

    @Test func advantagesDoNotDependOnOrder() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...1_000_000)) { seed in
            var gen = RandomBatch(seed: seed)
            let batch = gen.batch(groups: 1 + gen.int(3))
            // Reverse the groups and rotate the trajectories inside each group.
            let groupPerm = Array(batch.groups.indices.reversed())
            let trajPerms = batch.groups.map { g in g.trajectories.indices.map { ($0 + 1) % g.trajectories.count } }
            var permuted = batch
            permuted.groups = groupPerm.map { gi in
                var g = batch.groups[gi]
                g.trajectories = shuffled(g.trajectories, trajPerms[gi])
                return g
            }
            for method in Self.methods {
                let a = try method.estimator.estimate(batch)
                let b = try method.estimator.estimate(permuted)
                for (pg, gi) in groupPerm.enumerated() {
                    for (pi, ti) in trajPerms[gi].enumerated() {
                        expectClose(b.advantages[pg][pi], a.advantages[gi][ti], tol: 1e-9, "\(method.method) seed \(seed)")
                    }
                }
            }
        }
    }

    @Test func grpoAdvantagesSumToZeroPerGroup() async {
        await propertyCheck(count: 100, input: Gen.int(in: 0...1_000_000)) { seed in
            var gen = RandomBatch(seed: seed)
            let batch = gen.batch(groups: 2)
            for p in [GRPO.Params(), GRPO.Params(stdNormalize: false), GRPO.Params(std: .biased)] {
                let adv = GRPO.advantages(batch, p)
                for (g, group) in batch.groups.enumerated() where group.trajectories.count > 1 {
                    #expect(Swift.abs(adv[g].reduce(0, +)) < 1e-9)
                }
            }
        }
    }

    @Test func everyMethodReturnsOneValuePerToken() async {
        await propertyCheck(count: 40, input: Gen.int(in: 0...1_000_000)) { seed in
            var gen = RandomBatch(seed: seed)
            let batch = gen.batch(groups: 3)
            for method in Self.methods {
                let r = try method.estimator.estimate(batch)
                for (g, group) in batch.groups.enumerated() {
                    for (i, t) in group.trajectories.enumerated() {
                        #expect(r.advantages[g][i].count == t.count)
                        #expect(r.weights[g][i].count == t.count)
                        #expect(r.advantages[g][i].allSatisfy { $0.isFinite }, "\(method.method)")
                        #expect(r.weights[g][i].allSatisfy { $0 >= 0 && $0.isFinite })
                    }
                }
            }
        }
    }
}
