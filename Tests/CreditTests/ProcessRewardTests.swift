import Foundation
import Testing
@testable import Credit

@Suite struct PURETests {
    // PR = [0.5 at token 1, −0.5 at token 3], T = 0.1: w = softmax([−5, 5]) = [4.5398e-5, 0.9999546]
    // → r̃ = [2.2699e-5, −0.4999773]. Values below come from an independent Python reference.
    func t1() -> Trajectory {
        Trajectory(tokens: [1, 2, 3, 4], reward: 1, stepRewards: [StepReward(index: 3, reward: -0.5), StepReward(index: 1, reward: 0.5)])
    }

    @Test func minFormTransform() {
        expectClose(PURE.transform([0.5, -0.5], temperature: 0.1), [2.2698934e-5, -0.4999773011])
        // As T → 0 the sum tends to the minimum.
        #expect(Swift.abs(PURE.transform([0.9, 0.2, 0.6], temperature: 1e-3).reduce(0, +) - 0.2) < 1e-9)
        // Ties split the weight equally; uniform weights when weighted is off.
        expectClose(PURE.transform([0.3, 0.3], temperature: 0.1), [0.15, 0.15])
        expectClose(PURE.transform([0.2, 0.4], temperature: 0.1, weighted: false), [0.1, 0.2])
    }

    @Test func singleResponse() throws {
        // G = 1: no baselines; VR = R − 1 = 0. Returns of token rewards [0, 2.27e-5, 0, −0.49998].
        let r = try run(.pure(.init(maskSeparators: false)), [Group(id: "q", trajectories: [t1()])])
        expectClose(r.advantages[0][0], [-0.4999546021, -0.4999546021, -0.4999773011, -0.4999773011])
        // By default each step's last token and the response's last token get advantage 0.
        let masked = try run(.pure(.init()), [Group(id: "q", trajectories: [t1()])])
        expectClose(masked.advantages[0][0], [-0.4999546021, 0, -0.4999773011, 0])
    }

    @Test func stepAndTokenBaselines() throws {
        // Second response: 2 tokens, one step PR = 0.2 at token 0, R = 0.
        // step: per-step totals (−0.49995/2, 0.2) → LOO baselines (0.2, −0.24999); VR centred (+1, −1).
        // token: the others' pooled reward per token — 0.2/2 = 0.1 for y1, −0.49995/4 for y2 — times each
        // step's tokens before its end: y1's steps at 1 and 3 count 1 and 1, y2's step at 0 counts 0.
        let t2 = Trajectory(tokens: [5, 6], reward: 0, stepRewards: [StepReward(index: 0, reward: 0.2)])
        let step = try run(.pure(.init(maskSeparators: false)), [Group(id: "q", trajectories: [t1(), t2])])
        expectClose(step.advantages[0][0], [0.1000453979, 0.1000453979, 0.3000226989, 0.3000226989])
        expectClose(step.advantages[0][1], [-0.5500226989, -1])
        let token = try run(.pure(.init(baseline: .token, maskSeparators: false)), [Group(id: "q", trajectories: [t1(), t2])])
        expectClose(token.advantages[0][0], [0.3000453979, 0.3000453979, 0.4000226989, 0.4000226989])
        expectClose(token.advantages[0][1], [-0.8, -1])
    }

    @Test func reducesToOutcomeRLOO() throws {
        // The only step reward is R on the last token, no verifiable term: A = R_i − mean_{j≠i} R_j.
        let g = Group(id: "q", trajectories: [1.0, 0, 0, 1].map { r in
            Trajectory(tokens: [1, 2], reward: r, stepRewards: [StepReward(index: 1, reward: r)])
        })
        let pure = try run(.pure(.init(verifiableCoef: 0, maskSeparators: false)), [g])
        let rloo = try run(.rloo(.init()), [g])
        for i in 0..<4 { expectClose(pure.advantages[0][i], rloo.advantages[0][i]) }
    }

    @Test func noStepsLeavesOnlyTheVerifiableReward() throws {
        // VR = R − 1 ∈ {0, −1}, RLOO-centred: (0 − (−1)) = 1 and −1, on every token.
        let r = try run(.pure(.init(maskSeparators: false)), [group([(2, 1), (1, 0)])])
        #expect(r.advantages[0] == [[1, 1], [-1]])
    }

    /// The default equals the released code's advantages (fixtures written by
    /// scripts/reference/pure_official.py from CJReinforce/PURE @41f9363): both baselines, min-form
    /// and uniform weights, with and without separator masking.
    @Test func defaultMatchesTheOfficialCode() throws {
        struct Case: Decodable {
            let baseline: String, weighted: Bool, mask_separators: Bool
            let lengths: [Int], steps: [[Int]], step_rewards: [[Double]], rewards: [Double], advantages: [[Double]]
        }
        struct File: Decodable { let cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pure_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 96)
        for (k, c) in file.cases.enumerated() {
            let g = Group(id: "q", trajectories: c.lengths.indices.map { i in
                Trajectory(tokens: Array(repeating: 1, count: c.lengths[i]), reward: c.rewards[i],
                           stepRewards: zip(c.steps[i], c.step_rewards[i]).map { StepReward(index: $0, reward: $1) })
            })
            let p = PURE.Params(baseline: PURE.Baseline(rawValue: c.baseline)!, weighted: c.weighted, maskSeparators: c.mask_separators)
            let r = try run(.pure(p), [g])
            for i in c.lengths.indices { expectClose(r.advantages[0][i], c.advantages[i], tol: 1e-6, "case \(k) response \(i)") }
        }
        #expect(PURE.Params() == PURE.Params(baseline: .step, weighted: true, maskSeparators: true))
    }
}

@Suite struct GiGPOTests {
    // e1 (R=1): turns s0 [0,2), s1 [2,4); step rewards 0 and 1 → returns (γ=.95) [0.95, 1].
    // e2 (R=0): turns s0 [0,1), s2 [1,3); step rewards 0 → returns [0, 0].
    func episodes() -> Group {
        Group(id: "env", trajectories: [
            Trajectory(tokens: [1, 2, 3, 4], reward: 1, stepRewards: [StepReward(index: 1, reward: 0), StepReward(index: 3, reward: 1)],
                       states: [StateMark(index: 0, key: "s0"), StateMark(index: 2, key: "s1")]),
            Trajectory(tokens: [1, 5, 6], reward: 0, stepRewards: [StepReward(index: 2, reward: 0)],
                       states: [StateMark(index: 0, key: "s0"), StateMark(index: 1, key: "s2")]),
        ])
    }

    @Test func handComputed() throws {
        // Episode (cross-steps): [1, 1, 0, 0] → mean 0.5, unbiased σ 0.57735 → A^E = ±0.866024.
        // Step group s0: [0.95, 0] → mean 0.475, unbiased σ 0.671751 → A^S = ±0.707106; s1, s2 singletons → 0.
        let r = try run(.gigpo(.init()), [episodes()])
        expectClose(r.advantages[0][0], [1.5731296323, 1.5731296323, 0.8660239038, 0.8660239038])
        expectClose(r.advantages[0][1], [-1.5731296323, -0.8660239038, -0.8660239038])
    }

    @Test func reducesToGRPO() throws {
        let g = episodes()
        let grpo = try run(.grpo(.init()), [g])
        #expect(try run(.gigpo(.init(stepWeight: 0, crossSteps: false)), [g]).advantages == grpo.advantages)
        // Unique states: every step group is a singleton, A^S = 0.
        var unique = g
        unique.trajectories[1].states = [StateMark(index: 0, key: "x"), StateMark(index: 1, key: "y")]
        #expect(try run(.gigpo(.init(crossSteps: false)), [unique]).advantages == grpo.advantages)
        // One episode, as verl-agent computes it: its turns are the group's samples, all with the
        // same return, so A^E = (R − R)/(0 + eps) = 0; a single sample takes mean 0 and std 1, so a
        // one-turn episode gets R/(1 + eps) (R itself with norm: mean).
        var one = g
        one.trajectories = [g.trajectories[0]]
        #expect(one.trajectories[0].states!.count == 2)
        #expect(try run(.gigpo(.init(stepWeight: 0)), [one]).advantages == [[[0, 0, 0, 0]]])
        one.trajectories[0].states = [StateMark(index: 0, key: "a")]
        #expect(try run(.gigpo(.init(stepWeight: 0)), [one]).advantages == [[[Double](repeating: 1 / (1 + 1e-6), count: 4)]])
        #expect(try run(.gigpo(.init(stepWeight: 0, norm: .mean)), [one]).advantages == [[[1, 1, 1, 1]]])
        #expect(try run(.gigpo(.init(stepWeight: 0, crossSteps: false)), [one]).advantages == [[[Double](repeating: 1 / (1 + 1e-6), count: 4)]])
    }

    @Test func needsStates() {
        #expect(message { _ = try run(.gigpo(.init()), [group([(2, 1)])]) } == "group 'q', trajectory 0: method 'gigpo' needs 'states'")
        var bad = episodes()
        bad.trajectories[0].states = [StateMark(index: 2, key: "a"), StateMark(index: 1, key: "b")]
        #expect(message { _ = try run(.gigpo(.init()), [bad]) }
            == "group 'env', trajectory 0: 'states' must have increasing indices ('states'[1].index 1)")
    }
}
