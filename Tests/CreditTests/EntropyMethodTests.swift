import Foundation
import Testing
@testable import Credit

@Suite struct HAPOTests {
    let entropies = [0.01, 0.05, 0.2, 0.5, 1, 2]

    @Test func normalizedEntropyScoreBothSigns() {
        // e = log H; pivot = e at rank round(0.8·5) = 4 → m = log 1 = 0; s = RMS(e) = 2.3714;
        // h ≈ [−1.942, −1.263, −0.679, −0.292, 0, 0.292].
        let fixed = HAPO.EntropyStatistics(entropies: entropies, pivotQuantile: 0.8, signFix: true)
        expectClose(entropies.map(fixed.normalized), [-1, -0.6505149978, -0.3494850022, -0.1505149978, 0, 1])
        let released = HAPO.EntropyStatistics(entropies: entropies, pivotQuantile: 0.8, signFix: false)
        expectClose(entropies.map(released.normalized), [1, 0.6505149978, 0.3494850022, 0.1505149978, 0, 1])
        // Guards: an empty set gives finite statistics.
        let empty = HAPO.EntropyStatistics(entropies: [])
        #expect(empty.normalized(1).isFinite)
    }

    @Test func tokenLevelGroupAverage() throws {
        // R = [1, 0, 0, 1], L = [2, 4, 3, 1]: μ = 0.3, σ = 0.458258 → A = [1.52752, −0.65465, −0.65465, 1.52752].
        let r = try run(.hapo(.init(redistribution: false)), [group([(2, 1), (4, 0), (3, 0), (1, 1)])])
        expectClose(r.advantages[0].map { $0[0] }, [1.5275219, -0.6546523, -0.6546523, 1.5275219])
        // Single response → 0 (unlike GRPO); equal rewards → 0.
        #expect(try run(.hapo(.init(redistribution: false)), [group([(2, 1)])]).advantages == [[[0, 0]]])
    }

    @Test func tlgaFallsBackToGRPOWhenExtreme() throws {
        // L = [1, 100], R = [1, 0]: μ = 1/101, σ ≈ 0.0990 → A_1 ≈ 10 ≥ 5 → GRPO: ±0.5/0.707108.
        let r = try run(.hapo(.init(redistribution: false)), [group([(1, 1), (100, 0)])])
        expectClose([r.advantages[0][0][0], r.advantages[0][1][0]], [0.7071057, -0.7071057])
        #expect(r.diagnostics["hapo_tlga_fallback_groups"] == 1)
    }

    @Test func redistributionAtRolloutTime() throws {
        // Entropies as above over two 3-token responses, R = [1, 0] → TLGA A = ±0.999998.
        // ρ = 1 is in the neutral zone: ĥ ≤ 0 → A(1 + ĥ), ĥ > 0 → A.
        var t1 = traj([1, 2, 3], 1), t2 = traj([4, 5, 6], 0)
        t1.entropies = Array(entropies.prefix(3))
        t2.entropies = Array(entropies.suffix(3))
        t1.ratios = [1, 1, 1]
        t2.ratios = [1, 1, 1]
        let r = try run(.hapo(.init(redistribution: true)), [Group(id: "q", trajectories: [t1, t2])])
        expectClose(r.advantages[0][0], [0, 0.3494843032, 0.6505136968])
        expectClose(r.advantages[0][1], [-0.8494833032, -0.999998, -0.999998])
        // Outside the neutral zone (ρ = 1.5) the branches swap: ĥ > 0 → A(1 + ĥ), ĥ ≤ 0 → A.
        t2.ratios = [1.5, 1.5, 1.5]
        let moved = try run(.hapo(.init(redistribution: true)), [Group(id: "q", trajectories: [t1, t2])])
        expectClose(moved.advantages[0][1], [-0.999998, -0.999998, -1.999996])
    }

    /// TLGA and ĥ equal the released code's (fixtures written by scripts/reference/hapo_official.py
    /// from starriver030515/HAPO @7671dde): token-weighted statistics, the GRPO fallback, and ĥ
    /// with the released signed-minimum scale (`sign_fix: false`).
    @Test func matchesTheOfficialCode() throws {
        struct TLGACase: Decodable { let lengths: [Int]; let rewards: [Double]; let advantages: [Double] }
        struct LossCase: Decodable { let entropies: [Double]; let h_hat: [Double] }
        struct File: Decodable { let tlga: [TLGACase]; let loss: [LossCase] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/hapo_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.tlga.count == 30 && file.loss.count == 30)
        for (k, c) in file.tlga.enumerated() {
            let g = Group(id: "q", trajectories: zip(c.lengths, c.rewards).map { traj(Array(repeating: 1, count: $0), $1) })
            let r = try run(.hapo(.init()), [g])
            expectClose(r.advantages[0].map { $0[0] }, c.advantages, tol: 1e-6, "TLGA case \(k)")
            for (i, a) in r.advantages[0].enumerated() { #expect(Set(a).count == 1, "case \(k) response \(i): one advantage per response") }
        }
        for (k, c) in file.loss.enumerated() {
            let stats = HAPO.EntropyStatistics(entropies: c.entropies, pivotQuantile: 0.8, signFix: false)
            expectClose(c.entropies.map(stats.normalized), c.h_hat, tol: 1e-6, "ĥ case \(k)")
        }
    }

    @Test func reducesToGRPO() throws {
        let g = group([(2, 1), (4, 0), (3, 0.5)])
        #expect(try run(.hapo(.init(tlga: false, redistribution: false)), [g]).advantages == (try run(.grpo(.init()), [g])).advantages)
        // Redistribution (off by default: training does it in the loss) needs entropies and live ratios.
        #expect(try run(.hapo(.init()), [g]).advantages == (try run(.hapo(.init(redistribution: false)), [g])).advantages)
        #expect(message { _ = try run(.hapo(.init(redistribution: true)), [g]) } == "group 'q', trajectory 0: method 'hapo' needs 'entropies'")
    }
}

@Suite struct TWGRPOTests {
    /// Position scores and token weights equal the authors' `compute_token_importance_kl_logs_uniform`
    /// (fixtures written by scripts/reference/twgrpo_official.py from longmalongma/TW-GRPO @aa529ff).
    @Test func matchesTheOfficialCode() throws {
        struct Case: Decodable { let alpha: Double; let lengths: [Int]; let log_distributions: [[[Double]]]; let position_scores: [Double]; let weights: [[Double]] }
        struct File: Decodable { let cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/twgrpo_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 20)
        for (k, c) in file.cases.enumerated() {
            let scores = TWGRPO.positionScores(logDistributions: c.log_distributions)
            expectClose(scores, c.position_scores, tol: 1e-6, "case \(k) scores")
            let g = Group(id: "q", trajectories: c.lengths.enumerated().map { i, n in traj(Array(repeating: i, count: n), Double(i % 2)) }, positionScores: scores)
            let r = try run(.twGRPO(.init(alpha: c.alpha)), [g])
            for i in c.lengths.indices { expectClose(r.weights[0][i], c.weights[i], tol: 1e-6, "case \(k) response \(i)") }
        }
    }

    @Test func positionWeights() throws {
        // K = [0, 1, 0.5] → K̂ = [0, 1, 0.5] (÷(1 + 1e-8)) → w = 1 + 0.4·K̂ = [1, 1.4, 1.2].
        // Advantages: GRPO with eps 1e-4: ±0.5/(0.707107 + 1e-4) = ±0.707007.
        let g = Group(id: "q", trajectories: [traj([1, 2, 3], 1), traj([4, 5], 0)], positionScores: [0, 1, 0.5])
        let r = try run(.twGRPO(.init()), [g])
        expectClose(r.weights[0][0], [1, 1.4, 1.2])
        expectClose(r.weights[0][1], [1, 1.4])
        expectClose(r.advantages[0][1], [-0.7070067953, -0.7070067953])
    }

    @Test func positionScoresFromDistributions() {
        // Position 0: ℓ1 = log[.5, .5], ℓ2 = log[.9, .1]; position 1: ℓ1 = log[.8, .2], response 2 has
        // ended → uniform log[.5, .5]. Values from an independent Python reference.
        let l = { (p: [Double]) in p.map { Foundation.log($0) } }
        let k = TWGRPO.positionScores(logDistributions: [[l([0.5, 0.5]), l([0.8, 0.2])], [l([0.9, 0.1])]])
        expectClose(k, [0.385139176, 0.1345374206])
    }

    @Test func alphaOneIsGRPOAndScoresAreRequired() throws {
        let g = group([(2, 1), (3, 0)])
        let plain = try run(.grpo(.init(eps: 1e-4)), [g])
        #expect(try run(.twGRPO(.init(alpha: 1)), [g]) .advantages == plain.advantages)
        #expect(try run(.twGRPO(.init(alpha: 1)), [g]).weights == plain.weights)
        #expect(message { _ = try run(.twGRPO(.init()), [g]) } == "group 'q': method 'tw_grpo' needs 'position_scores'")
        var short = g
        short.positionScores = [1, 2]
        #expect(message { _ = try run(.twGRPO(.init()), [short]) } == "group 'q': 'position_scores' has 2 values but the longest response has 3 tokens")
    }
}

@Suite struct D3STests {
    @Test func maxVarianceSubset() {
        // keep 2 of [−1, −.5, 0, .5, 1]: j=1 → {1, −1}, variance 1 (j=0, 2 give 0.0625).
        #expect(D3S.selectMaxVariance([-1, -0.5, 0, 0.5, 1], keep: 2) == [0, 4])
        // keep 3: j=1 {1, −1, −.5} and j=2 {.5, 1, −1} tie at 0.7222 → the smaller j.
        #expect(D3S.selectMaxVariance([-1, -0.5, 0, 0.5, 1], keep: 3) == [0, 1, 4])
        #expect(D3S.selectMaxVariance([3, 1, 2], keep: 3) == [0, 1, 2])
    }

    @Test func sampleLevelOnGRPO() throws {
        // R = [1, 0, 0, 1] → ±0.866; keep ⌈0.5·4⌉ = 2: best is one of each sign — the largest
        // (index 3, last among equals) and the smallest (index 1).
        let r = try run(try config(#"{"method":"d3s","params":{"sample_keep":0.5}}"#), [group([(1, 1), (1, 0), (1, 0), (1, 1)])])
        #expect(r.weights[0] == [[0], [1], [0], [1]])
        #expect(r.advantages == (try run(.grpo(.init()), [group([(1, 1), (1, 0), (1, 0), (1, 1)])])).advantages)
    }

    @Test func tokenLevelByAbsAdvantageTimesEntropy() throws {
        // Advantages ±0.5 (Dr.GRPO base); H = [0.1, 0.9, 0.5 | 0.3, 0, 0.8] → scores
        // [.05, .45, .25 | .15, 0, .4]; keep ⌈0.5·6⌉ = 3 → tokens with .45, .4, .25.
        var t1 = traj([1, 2, 3], 1), t2 = traj([4, 5, 6], 0)
        t1.entropies = [0.1, 0.9, 0.5]
        t2.entropies = [0.3, 0, 0.8]
        let cfg = try config(#"{"method":"d3s","params":{"token_keep":0.5,"base":{"method":"grpo","params":{"std_normalize":false}}}}"#)
        let r = try run(cfg, [Group(id: "q", trajectories: [t1, t2])])
        #expect(r.weights[0] == [[0, 1, 1], [0, 0, 1]])
        // Per sequence: ⌈0.5·3⌉ = 2 each, and the zero-entropy token is never kept.
        let seq = try config(#"{"method":"d3s","params":{"token_keep":0.5,"token_scope":"sequence"}}"#)
        #expect(try run(seq, [Group(id: "q", trajectories: [t1, t2])]).weights[0] == [[0, 1, 1], [1, 0, 1]])
        // A quota above the number of positive scores still never keeps a zero-entropy token.
        let generous = try config(#"{"method":"d3s","params":{"token_keep":0.9,"token_scope":"sequence"}}"#)
        #expect(try run(generous, [Group(id: "q", trajectories: [t1, t2])]).weights[0] == [[1, 1, 1], [1, 0, 1]])
    }

    @Test func scheduleRunsFromTheStartToTheEndPoint() throws {
        let p = D3S.Params(sampleKeep: 0.5, schedule: .linear)
        #expect(p.keep(0.5, to: 1, progress: 0.5) == 0.75)
        let c = D3S.Params(sampleKeep: 0.5, schedule: .cosine)
        #expect(Swift.abs(c.keep(0.5, to: 1, progress: 0.5) - 0.75) < 1e-12)
        #expect(c.keep(0.5, to: 1, progress: 1) == 1)
        #expect(c.keep(0.5, to: 1, progress: 0) == 0.5)
        // The paper's end point is a parameter: (1 − p)·κ₀ + p·κ₁; here 0.25 → 0.5 reaches 0.375 half-way.
        #expect(p.keep(0.25, to: 0.5, progress: 0.5) == 0.375)
        // With the default end point everything is kept at the end of training.
        let g = group([(1, 1), (1, 0), (1, 0), (1, 1)])
        let r = try run(.d3s(.init(sampleKeep: 0.25, schedule: .linear)), [g], progress: 1)
        #expect(r.weights[0].allSatisfy { $0 == [1] })
        // An end point of 0.5 keeps two of four at the end.
        let half = try run(try config(#"{"method":"d3s","params":{"sample_keep":0.25,"sample_keep_final":0.5,"schedule":"linear"}}"#), [g], progress: 1)
        #expect(half.weights[0] == [[0], [1], [0], [1]])
        #expect(half.diagnostics["d3s_sample_keep"] == 0.5)
        // A constant schedule never reaches an end point: setting one is refused, not ignored.
        #expect(message { _ = try config(#"{"method":"d3s","params":{"sample_keep":0.5,"sample_keep_final":0.8}}"#) }
            .contains("sample_keep_final"))
    }

    /// The paper's default selection is across groups: an all-correct group (advantages 0) loses its
    /// samples to a mixed group's, where per-group selection keeps half of each.
    @Test func sampleLevelAcrossGroups() throws {
        let mixed = group([(1, 1), (1, 0), (1, 0), (1, 1)], id: "mixed"), solved = group([(1, 1), (1, 1), (1, 1), (1, 1)], id: "solved")
        let batch = try run(.d3s(.init(sampleKeep: 0.5)), [mixed, solved])
        #expect(batch.weights[0] == [[1], [1], [1], [1]])
        #expect(batch.weights[1] == [[0], [0], [0], [0]])
        let perGroup = try run(try config(#"{"method":"d3s","params":{"sample_keep":0.5,"sample_scope":"group"}}"#), [mixed, solved])
        #expect(perGroup.weights[0] == [[0], [1], [0], [1]])
        #expect(perGroup.weights[1].filter { $0 == [1] }.count == 2)
    }

    @Test func keepingEverythingIsTheBase() throws {
        let g = Group(id: "q", trajectories: [traj([1, 2, 3], 1), traj([1, 2, 4], 0), traj([5], 1)])
        for base in [CreditConfig.grpo(.init()), .tempo(.init()), .rloo(.init())] {
            let plain = try run(base, [g])
            let d = try run(.d3s(.init(base: base)), [g])
            #expect(d.advantages == plain.advantages)
            #expect(d.weights == plain.weights)
        }
        #expect(try config(#"{"method":"d3s","params":{"base":"rloo"}}"#) == .d3s(.init(base: .rloo(.init()))))
        #expect(message { _ = try config(#"{"method":"d3s","params":{"base":"d3s"}}"#) } == "method 'd3s': param 'base' cannot itself be 'd3s'")
    }
}

@Suite struct HICRATests {
    @Test func planningTokensGetExtraCredit() throws {
        // gram [2, 3] in [1, 2, 3, 4] marks tokens 1 and 2; A' = Â + 0.2·|Â| there (Dr.GRPO Â = ±0.5).
        #expect(HICRA.planningMask(tokens: [1, 2, 3, 4, 2, 3], grams: [[2, 3]]) == [false, true, true, false, true, true])
        let g = Group(id: "q", trajectories: [traj([1, 2, 3, 4], 1), traj([2, 3], 0)])
        let r = try run(.hicra(.init(grpo: .init(stdNormalize: false), grams: [[2, 3]], entropyTop: 0)), [g])
        expectClose(r.advantages[0][0], [0.5, 0.6, 0.6, 0.5])
        expectClose(r.advantages[0][1], [-0.4, -0.4])
        // Explicit planning indices work too.
        var t = traj([7, 8], 1)
        t.planning = [0]
        let explicit = try run(.hicra(.init(grpo: .init(stdNormalize: false), entropyTop: 0)), [Group(id: "q", trajectories: [t, traj([9], 0)])])
        expectClose(explicit.advantages[0][0], [0.6, 0.5])
    }

    /// The released recipe's entropy branch: only responses with Â > 0 longer than the group's mean
    /// length qualify; in those, tokens with H > sorted(H)[⌊0.7·n⌋] get Â·(1 + α).
    @Test func highEntropyTokensOfLongCorrectResponsesGetExtraCredit() throws {
        #expect(HICRA.highEntropyMask([0.5, 2, 1, 3, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7], top: 0.3)
                == [false, true, false, true, false, false, false, false, false, false])   // threshold sorted[7] = 1
        #expect(HICRA.highEntropyMask([1, 1, 1], top: 0.3) == [false, false, false])           // ties at the threshold stay
        var long = traj([1, 2, 3, 4], 1), short = traj([5], 1), wrong = traj([6, 7, 8, 9, 10], 0)
        long.entropies = [0.1, 0.9, 0.5, 0.2]       // threshold sorted[⌊2.8⌋] = 0.5 → token 1
        short.entropies = [3]
        wrong.entropies = [5, 5, 5, 5, 0.1]
        // Dr. GRPO: mean reward 2/3 → Â = 1/3, 1/3, −2/3; mean length 10/3: only `long` (4 > 3.33) qualifies.
        let r = try run(.hicra(.init(grpo: .init(stdNormalize: false))), [Group(id: "q", trajectories: [long, short, wrong])])
        expectClose(r.advantages[0][0], [1.0 / 3, 1.2 / 3, 1.0 / 3, 1.0 / 3])
        expectClose(r.advantages[0][1], [1.0 / 3])
        expectClose(r.advantages[0][2], Array(repeating: -2.0 / 3, count: 5))
        #expect(r.diagnostics["hicra_entropy_token_fraction"] == 0.1)
        // Without entropies the branch names what it needs; entropy_top 0 turns it off.
        #expect(message { _ = try run(.hicra(.init()), [group([(2, 1), (1, 0)])]) }
                == "group 'q', trajectory 0: method 'hicra' needs 'entropies (for entropy_top > 0)'")
        #expect(try run(.hicra(.init(entropyTop: 0)), [group([(2, 1), (1, 0)])]).advantages == (try run(.grpo(.init()), [group([(2, 1), (1, 0)])])).advantages)
    }

    @Test func alphaZeroIsGRPO() throws {
        let g = Group(id: "q", trajectories: [traj([1, 2, 3], 1), traj([2, 3], 0)])
        #expect(try run(.hicra(.init(alpha: 0, grams: [[2, 3]], entropyTop: 0)), [g]).advantages == (try run(.grpo(.init()), [g])).advantages)
    }
}
