import Foundation
import Testing
@testable import Credit

/// RTO (`gae` with `token_rewards: true`): the scaled and clipped implicit token rewards join the
/// KL penalty and the outcome reward in GAE's rewards (zkshan2002/RTO @f2c1294 `compute_reward`).
@Suite struct RTOTests {
    func rto(scale: Double = 0.05, clip: Double = 0.05) -> GAE.Params {
        var p = GAE.Params(gamma: 1, lam: 1)
        p.tokenRewards = true; p.tokenRewardScale = scale; p.tokenRewardClip = clip
        return p
    }

    @Test func handComputed() throws {
        // Δ = (0.5, −2, 0.01), β₁ 0.05, c 0.05 → (0.025, −0.05 (−0.1 clipped), 0.0005); R = 1 on the last token.
        // V ≡ 0, γ = λ = 1: A_t = Σ_{k≥t} r_k = (0.9755, 0.9505, 1.0005).
        var t = traj([1, 2, 3], 1)
        t.values = [0, 0, 0]
        t.tokenRewards = [0.5, -2, 0.01]
        expectClose(try run(.gae(rto()), [Group(id: "q", trajectories: [t])]).advantages[0][0], [0.9755, 0.9505, 1.0005], tol: 1e-12)
        // No clip (c = 0): −0.1 stays; and the returns the critic learns carry the same rewards.
        expectClose(try run(.gae(rto(clip: 0)), [Group(id: "q", trajectories: [t])]).advantages[0][0], [0.9255, 0.9005, 1.0005], tol: 1e-12)
        expectClose(GAE.returns(t, rto(clip: 0)), [0.9255, 0.9005, 1.0005], tol: 1e-12)
    }

    /// Zero token rewards, or the switch off, is plain GAE; an agent's observation tokens earn none.
    @Test func reducesToGAE() throws {
        var t = traj([1, 2, 3, 4], 1)
        t.values = [0.2, -0.1, 0.4, 0.3]
        t.kl = [0.1, 0.2, -0.1, 0]
        var p = GAE.Params(klCoef: 0.1)
        let plain = try run(.gae(p), [Group(id: "q", trajectories: [t])]).advantages[0][0]
        t.tokenRewards = [0, 0, 0, 0]
        p.tokenRewards = true
        expectClose(try run(.gae(p), [Group(id: "q", trajectories: [t])]).advantages[0][0], plain, tol: 1e-12)
        t.tokenRewards = [1, 1, 1, 1]
        t.actionMask = [true, false, false, true]
        var masked = t
        masked.tokenRewards = [1, 0, 0, 1]
        masked.actionMask = nil
        let a = try run(.gae(p), [Group(id: "q", trajectories: [t])]).advantages[0][0]
        #expect(a[0] != plain[0])
        // Without the mask, tokens 1 and 2 would add 2·0.05 to token 0's return.
        let b = try run(.gae(p), [Group(id: "q", trajectories: [masked])]).advantages[0][0]
        #expect(Swift.abs(b[0] - a[0]) > 1e-3)
    }

    struct Case: Decodable { let request: CreditRequest; let advantages: [[[Double]]]; let returns: [[[Double]]] }
    struct File: Decodable { let source: String; let cases: [Case] }

    /// Fixtures written by scripts/reference/rto_official.py from the authors' reward and GAE code:
    /// scales with and without clipping, KL coefficients and γ, λ.
    @Test func matchesTheOfficialCode() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/rto_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 18)
        for (k, c) in file.cases.enumerated() {
            guard case .gae(let p) = c.request.config, p.tokenRewards else { Issue.record("case \(k) is not RTO"); continue }
            let r = try c.request.config.estimator.estimate(c.request.batch)
            for g in c.advantages.indices {
                for i in c.advantages[g].indices {
                    expectClose(r.advantages[g][i], c.advantages[g][i], tol: 1e-9, "case \(k) group \(g) trajectory \(i)")
                    expectClose(GAE.returns(c.request.batch.groups[g].trajectories[i], p), c.returns[g][i], tol: 1e-9, "case \(k) returns")
                }
            }
        }
    }

    @Test func readFromJSONAndRefusedWithoutTheirInput() throws {
        let c = try config(#"{"method": "gae", "params": {"token_rewards": true, "token_reward_scale": 0.1, "token_reward_clip": 0}}"#)
        #expect(c.inputs == [.values, .tokenRewards])
        #expect(c.gaeParams?.tokenRewardScale == 0.1)
        let data = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(CreditConfig.self, from: data) == c)
        var t = traj([1, 2], 1)
        t.values = [0, 0]
        #expect(message { _ = try run(c, [Group(id: "q", trajectories: [t])]) }.contains("method 'gae' needs 'token_rewards'"))
        #expect(message { _ = try config(#"{"method": "gae", "params": {"token_reward_scale": 0.1}}"#) }.contains("applies only with 'token_rewards: true'"))
        #expect(message { _ = try config(#"{"method": "gae", "params": {"token_rewards": true, "token_reward_clip": -1}}"#) }.contains("must be ≥ 0"))
        #expect(message { _ = try config(#"{"method": "gae", "params": {"token_rewards": true, "token_reward_scale": 0}}"#) }.contains("must be positive"))
        t.tokenRewards = [0.1]
        #expect(message { _ = try run(c, [Group(id: "q", trajectories: [t])]) }.contains("'token_rewards' has 1 values but the response has 2 tokens"))
    }
}
