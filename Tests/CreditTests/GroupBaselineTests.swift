import Foundation
import Testing
@testable import Credit

@Suite struct GRPOTests {
    // R = [1, 0, 0, 1]: mean 0.5; unbiased std = sqrt(4·0.25/3) = 0.577350; biased std = 0.5.
    let g = group([(2, 1), (1, 0), (3, 0), (1, 1)])

    @Test func unbiasedStdGoldenVector() throws {
        let r = try run(.grpo(.init()), [g])
        let a = 0.5 / (1 / 3.0.squareRoot() + 1e-6)  // 0.866024
        expectClose(r.advantages[0][0], [a, a])
        expectClose(r.advantages[0][1], [-a])
        expectClose(r.advantages[0][2], [-a, -a, -a])
        expectClose(r.advantages[0][3], [a])
        #expect(r.weights[0][2] == [1, 1, 1])
    }

    @Test func biasedStdAndDrGRPO() throws {
        let biased = try run(.grpo(.init(std: .biased)), [g])
        expectClose(biased.advantages[0][0], [0.999998, 0.999998])  // 0.5 / (0.5 + 1e-6)
        let dr = try run(try config(#"{"method":"grpo","params":{"std_normalize":false}}"#), [g])
        expectClose(dr.advantages[0].map { $0[0] }, [0.5, -0.5, -0.5, 0.5])
    }

    @Test func batchScale() throws {
        // Groups [1, 0] and [1, 1]; batch rewards [1, 0, 1, 1]: unbiased std = sqrt(0.75/3) = 0.5.
        let r = try run(.grpo(.init(scale: .batch)), [group([(1, 1), (1, 0)], id: "a"), group([(1, 1), (1, 1)], id: "b")])
        expectClose(r.advantages[0].map { $0[0] }, [0.5 / 0.500001, -0.5 / 0.500001])
        expectClose(r.advantages[1].map { $0[0] }, [0, 0])
    }

    @Test func edgeCases() throws {
        // Equal rewards → exactly 0; one response → A = R (verl); empty and length-1 responses.
        let r = try run(.grpo(.init()), [group([(2, 0.7), (0, 0.7), (1, 0.7)], id: "eq"), group([(3, 0.25)], id: "one")])
        #expect(r.advantages[0] == [[0, 0], [], [0]])
        #expect(r.advantages[1] == [[0.25, 0.25, 0.25]])
        // Ties: equal rewards get equal advantages.
        let t = try run(.grpo(.init()), [group([(1, 1), (1, 1), (1, 0)])])
        #expect(t.advantages[0][0] == t.advantages[0][1])
    }

    @Test func nonFiniteRewardsAreRejected() {
        for bad in [Double.nan, .infinity, -.infinity] {
            let m = message { _ = try run(.grpo(.init()), [group([(1, 1), (1, bad)])]) }
            #expect(m == "group 'q', trajectory 1: reward is not finite (\(bad))")
        }
    }
}

@Suite struct RLOOTests {
    @Test func goldenVectorAndSingleton() throws {
        // A_i = G/(G−1)·(R_i − mean) = 4/3·(±0.5) = ±0.666667.
        let r = try run(.rloo(.init()), [group([(1, 1), (2, 0), (1, 0), (1, 1)]), group([(2, 3)], id: "s")])
        expectClose(r.advantages[0].map { $0[0] }, [2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3])
        #expect(r.advantages[1] == [[3, 3]])  // G = 1: no baseline
    }

    @Test func reducesToDrGRPOUpToGOverGMinusOne() throws {
        let g = group([(1, 0.3), (1, 0.9), (1, 0.1)])
        let rloo = try run(.rloo(.init()), [g]).advantages[0].map { $0[0] }
        let dr = try run(.grpo(.init(stdNormalize: false)), [g]).advantages[0].map { $0[0] }
        expectClose(rloo, dr.map { $0 * 3 / 2 })
    }
}

@Suite struct ReinforcePPTests {
    @Test func noBaselineDiscountedReturnsThenBatchWhitening() throws {
        // γ = 0.5: trajectory A (3 tokens, R = 1) → returns [0.25, 0.5, 1]; B (1 token, R = 0) → [0].
        // Tokens [0.25, 0.5, 1, 0]: mean 0.4375, biased σ = 0.369755 → whitened below.
        let r = try run(.reinforcePP(.init(baseline: .none, gamma: 0.5)), [group([(3, 1), (1, 0)])])
        expectClose(r.advantages[0][0], [-0.50709255, 0.16903085, 1.52127766])
        expectClose(r.advantages[0][1], [-1.18321596])
    }

    @Test func groupBaseline() throws {
        // R = [1, 0] → A = ±0.5 on every token; tokens [0.5, 0.5, −0.5, −0.5]: σ = 0.5 → ±1.
        let r = try run(.reinforcePP(.init()), [group([(2, 1), (2, 0)])])
        expectClose(r.advantages[0][0] + r.advantages[0][1], [1, 1, -1, -1])
    }

    @Test func klShapingAndMeanOnlyWhitening() throws {
        // kl_coef 0.1, kl = [1, 2], R = 1: rewards [−0.1, 0.8] → returns [0.7, 0.8] → minus mean 0.75.
        var t = traj([5, 6], 1)
        t.kl = [1, 2]
        let r = try run(.reinforcePP(.init(baseline: .none, klCoef: 0.1, stdNormalize: false)), [Group(id: "q", trajectories: [t])])
        expectClose(r.advantages[0][0], [-0.05, 0.05])
        #expect(message { _ = try run(.reinforcePP(.init(klCoef: 0.1)), [group([(1, 1)])]) }
            == "group 'q', trajectory 0: method 'reinforce_pp' needs 'kl'")
    }

    @Test func equalAdvantagesWhitenToZero() throws {
        let r = try run(.reinforcePP(.init()), [group([(2, 1), (3, 1)])])
        #expect(r.advantages[0].allSatisfy { $0.allSatisfy { $0 == 0 } })
    }
}

@Suite struct GAETests {
    @Test func handComputed() throws {
        // r = [0, 0, 1], V = [0.5, 0.6, 0.7], γ = 1, λ = 0.95:
        // t=2: δ = 1 − 0.7 = 0.3 → A = 0.3;  t=1: δ = 0.7 − 0.6 = 0.1 → A = 0.1 + 0.95·0.3 = 0.385;
        // t=0: δ = 0.6 − 0.5 = 0.1 → A = 0.1 + 0.95·0.385 = 0.46575.
        var t = traj([1, 2, 3], 1)
        t.values = [0.5, 0.6, 0.7]
        let r = try run(.gae(.init()), [Group(id: "q", trajectories: [t])])
        expectClose(r.advantages[0][0], [0.46575, 0.385, 0.3])
    }

    @Test func reinforceLimitAndMissingValues() throws {
        var t = traj([1, 2, 3], 2)
        t.values = [0, 0, 0]
        let r = try run(.gae(.init(lam: 1)), [Group(id: "q", trajectories: [t])])
        #expect(r.advantages[0][0] == [2, 2, 2])
        #expect(message { _ = try run(.gae(.init()), [group([(2, 1)])]) } == "group 'q', trajectory 0: method 'gae' needs 'values'")
        var short = traj([1, 2], 1)
        short.values = [0.1]
        #expect(message { _ = try run(.gae(.init()), [Group(id: "q", trajectories: [short])]) }
            == "group 'q', trajectory 0: 'values' has 1 values but the response has 2 tokens")
    }
}
