import Foundation
import Testing
@testable import Credit

/// Edge cases every method must handle: equal rewards, a single response, empty and length-1
/// responses, non-finite rewards.
@Suite struct EdgeCaseTests {
    /// A group with every field any method needs, rewards given.
    func fullGroup(_ rewards: [Double], lengths: [Int], id: String = "q") -> Group {
        let trajs = zip(rewards, lengths).enumerated().map { k, rl in
            let (r, n) = rl
            var t = Trajectory(tokens: (0..<n).map { ($0 + k) % 3 }, reward: r,
                               logprobs: Array(repeating: Foundation.log(0.5), count: n),
                               entropies: (0..<n).map { 0.1 + Double($0) }, values: Array(repeating: 0.2, count: n),
                               stepRewards: n == 0 ? [] : [StepReward(index: n - 1, reward: r)], segments: [],
                               segmentValues: [], states: [StateMark(index: 0, key: "s")], treePath: ["n\(k)"])
            t.turnRewards = [0.1 * Double(k)]
            return t
        }
        return Group(id: id, trajectories: trajs, positionScores: Array(repeating: 1, count: lengths.max() ?? 0))
    }

    /// Methods whose advantages are exactly 0 when every reward in a group is equal (ALGORITHMS.md §21.9).
    static let groupBaselined: [CreditConfig] = [
        .grpo(.init()), .grpo(.init(stdNormalize: false)), .rloo(.init()), .reinforcePP(.init()),
        .tempo(.init()), .hapo(.init()), .twGRPO(.init()), .hicra(.init(grams: [[0, 1]])),
        .d3s(.init(sampleKeep: 0.5)), .gigpo(.init(stepWeight: 0)), .istar(.init(stepWeight: 0)),
    ]

    @Test(arguments: groupBaselined)
    func equalRewardsGiveExactlyZero(_ method: CreditConfig) throws {
        let r = try run(method, [fullGroup([0.7, 0.7, 0.7], lengths: [3, 1, 0])])
        #expect(r.advantages[0].allSatisfy { $0.allSatisfy { $0 == 0 } }, "\(method.method)")
    }

    @Test(arguments: CreditMethod.allCases)
    func nonFiniteRewardsAreRejectedByEveryMethod(_ method: CreditMethod) {
        let g = fullGroup([1, .nan], lengths: [2, 2])
        #expect(message { _ = try run(CreditConfig(method: method), [g]) } == "group 'q', trajectory 1: reward is not finite (nan)")
    }

    @Test(arguments: CreditMethod.allCases.filter { $0 != .spoChain && $0 != .spoTree })
    func singleEmptyAndLengthOneResponses(_ method: CreditMethod) throws {
        let r = try run(CreditConfig(method: method), [fullGroup([1], lengths: [1], id: "one"), fullGroup([1, 0], lengths: [0, 1], id: "two")])
        #expect(r.advantages[0][0].count == 1)
        #expect(r.advantages[1][0].isEmpty && r.advantages[1][1].count == 1)
        #expect(r.advantages.allSatisfy { $0.allSatisfy { $0.allSatisfy(\.isFinite) } })
    }
}
