import Foundation
import XCTest
@testable import Credit
@testable import Objectives
@testable import Torch

/// Evaluates a policy loss on ragged float64 rows; returns the loss, d loss/d logprobs per row, metrics.
func policy(_ config: PolicyLossConfig, logp: [[Double]], old: [[Double]], adv: [[Double]],
            rollout: [[Double]]? = nil, ref: [[Double]]? = nil, weights: [[Double]]? = nil,
            entropies: [[Double]]? = nil, turns: [[Double]]? = nil) throws -> (loss: Double, grad: [[Double]], metrics: [String: Double]) {
    try withTorchErrors {
        let (lp, mask) = padded(logp, dtype: .float64)
        lp.requiresGrad = true
        let t = { (rows: [[Double]]?) in rows.map { padded($0, dtype: .float64).values } }
        let batch = PolicyBatch(logprobs: lp, oldLogprobs: t(old)!, advantages: t(adv)!, mask: mask, rolloutLogprobs: t(rollout),
                                refLogprobs: t(ref), weights: t(weights), entropies: t(entropies), turns: t(turns)?.to(dtype: .int64))
        let (loss, metrics) = try PolicyLoss(config)(batch)
        loss.backward()
        let g = try lp.grad!.doubles(), w = lp.size(1)
        return (try loss.item(), logp.enumerated().map { i, r in Array(g[(i * w)..<(i * w + r.count)]) }, metrics)
    }
}

func cfg(_ edit: (inout PolicyLossConfig) -> Void) -> PolicyLossConfig {
    var c = PolicyLossConfig()
    edit(&c)
    return c
}

final class PolicyLossTests: XCTestCase {
    func e(_ x: Double) -> Double { Foundation.exp(x) }

    /// Token PPO, every branch: A > 0 / A < 0 with ρ inside, above and below the range.
    func testTokenClippedSurrogateBranches() throws {
        // lr = logp − old = [0.1, 0.5, −0.5, 0.5, −0.5], A = [1, 1, −1, −1, 1], ε = 0.2:
        // t0 ρ=e^.1 inside → −ρ (grad −ρ/5); t1 ρ=e^.5>1.2, A>0 → −1.2 (clipped, grad 0);
        // t2 ρ=e^−.5<0.8, A<0 → 0.8 (clipped, grad 0); t3 ρ=e^.5, A<0 → max(ρ, 1.2) = ρ (grad ρ/5);
        // t4 ρ=e^−.5, A>0 → max(−ρ, −0.8) = −ρ (grad −ρ/5).
        let r = try policy(PolicyLossConfig(), logp: [[0.1, 0.5, -0.5, 0.5, -0.5]], old: [[0, 0, 0, 0, 0]], adv: [[1, 1, -1, -1, 1]])
        let terms: [Double] = [-e(0.1), -1.2, 0.8, e(0.5), -e(-0.5)]
        XCTAssertEqual(r.loss, terms.reduce(0, +) / 5, accuracy: 1e-12)
        assertClose(r.grad[0], [-e(0.1) / 5, 0, 0, e(0.5) / 5, -e(-0.5) / 5], tol: 1e-12)
        XCTAssertEqual(r.metrics["clip_fraction_high"]!, 0.2, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["clip_fraction_low"]!, 0.2, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["ratio_max"]!, e(0.5), accuracy: 1e-12)
        XCTAssertEqual(r.metrics["ratio_min"]!, e(-0.5), accuracy: 1e-12)
        XCTAssertEqual(r.metrics["approx_kl"]!, (0.01 + 4 * 0.25) / 2 / 5, accuracy: 1e-12)
    }

    func testDecoupledDualAndNoClip() throws {
        // Clip-higher ε_high = 0.28: ρ = e^.5 with A = 1 → −1.28.
        let high = try policy(cfg { $0.epsHigh = 0.28 }, logp: [[0.5]], old: [[0]], adv: [[1]])
        XCTAssertEqual(high.loss, -1.28, accuracy: 1e-12)
        // Dual clip c = 3, A = −1: ρ = e² → min(max(e², 1.2), 3) = 3 (grad 0); ρ = e^.5 stays ρ.
        let dual = try policy(cfg { $0.dualClip = 3 }, logp: [[2, 0.5]], old: [[0, 0]], adv: [[-1, -1]])
        XCTAssertEqual(dual.loss, (3 + e(0.5)) / 2, accuracy: 1e-12)
        assertClose(dual.grad[0], [0, e(0.5) / 2], tol: 1e-12)
        XCTAssertEqual(dual.metrics["dual_clip_fraction"]!, 0.5, accuracy: 1e-12)
        // No clipping: −ρA everywhere.
        let none = try policy(cfg { $0.clip = false }, logp: [[0.5, -0.5]], old: [[0, 0]], adv: [[1, -1]])
        XCTAssertEqual(none.loss, (-e(0.5) + e(-0.5)) / 2, accuracy: 1e-12)
    }

    func testAggregationsOnARaggedBatch() throws {
        // ρ = 1 and no clipping: ℓ = −A. Rows [−1, −2] and [−4]; T = 2.
        let rows: [[Double]] = [[1, 2], [4]]
        let logp: [[Double]] = [[0, 0], [0]]
        func loss(_ a: PolicyLossConfig.Aggregation, _ c: Double? = nil) throws -> Double {
            try policy(cfg { $0.aggregation = a; $0.normConstant = c; $0.clip = false }, logp: logp, old: logp, adv: rows).loss
        }
        XCTAssertEqual(try loss(.tokenMean), -7.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try loss(.seqMeanTokenMean), -(1.5 + 4) / 2, accuracy: 1e-12)
        XCTAssertEqual(try loss(.seqMeanTokenSum), -(3 + 4) / 2, accuracy: 1e-12)
        XCTAssertEqual(try loss(.seqMeanTokenSumNorm), -7.0 / 2, accuracy: 1e-12)       // C = T = 2
        XCTAssertEqual(try loss(.seqMeanTokenSumNorm, 10), -0.7, accuracy: 1e-12)
    }

    func testCreditWeightsMaskAndScale() throws {
        // Weights [2, 0, 1]: the middle token leaves numerator and denominator; ℓ = −A·w.
        let r = try policy(cfg { $0.clip = false }, logp: [[0, 0, 0]], old: [[0, 0, 0]], adv: [[1, 5, 3]], weights: [[2, 0, 1]])
        XCTAssertEqual(r.loss, -(2 * 1 + 3 * 1) / 2, accuracy: 1e-12)
        assertClose(r.grad[0], [-1, 0, -1.5], tol: 1e-12)
        XCTAssertEqual(r.metrics["masked_fraction"]!, 1.0 / 3, accuracy: 1e-12)
    }

    func testSequenceLevelGSPO() throws {
        // lr = [0.1, 0.3] → s = e^0.2 = 1.2214 above 1 + 4e-4; A = −1 → ℓ = s on both tokens (unclipped
        // for A < 0); loss = s, d s/d logp_t = s/2 → grad (s/2)/2·2 = s/2 per token.
        let r = try policy(cfg { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean }, logp: [[0.1, 0.3]], old: [[0, 0]], adv: [[-1, -1]])
        XCTAssertEqual(r.loss, e(0.2), accuracy: 1e-12)
        assertClose(r.grad[0], [e(0.2) / 2, e(0.2) / 2], tol: 1e-12)
        // A = +1: clipped at 1 + 4e-4, no gradient.
        let c = try policy(cfg { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean }, logp: [[0.1, 0.3]], old: [[0, 0]], adv: [[1, 1]])
        XCTAssertEqual(c.loss, -1.0004, accuracy: 1e-12)
        assertClose(c.grad[0], [0, 0])
    }

    func testSequenceEqualsTokenForLengthOneResponses() throws {
        let lp: [[Double]] = [[0.3], [-0.7], [0.05]], old: [[Double]] = [[0], [0], [0]], adv: [[Double]] = [[1], [-1], [0.5]]
        let token = try policy(PolicyLossConfig(), logp: lp, old: old, adv: adv)
        for ratio in [PolicyLossConfig.Ratio.sequence, .gspoToken] {
            let seq = try policy(cfg { $0.ratio = ratio; $0.aggregation = .seqMeanTokenMean; $0.seqEpsLow = 0.2; $0.seqEpsHigh = 0.2 }, logp: lp, old: old, adv: adv)
            XCTAssertEqual(seq.loss, token.loss, accuracy: 1e-12)
            assertClose(seq.grad.flatMap { $0 }, token.grad.flatMap { $0 }, tol: 1e-12)
        }
    }

    func testGSPOTokenEqualsGSPOWithSequenceAdvantages() throws {
        let lp: [[Double]] = [[0.1, -0.2, 0.05]], old: [[Double]] = [[0, 0, 0]], adv: [[Double]] = [[-0.7, -0.7, -0.7]]
        let a = try policy(cfg { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean }, logp: lp, old: old, adv: adv)
        let b = try policy(cfg { $0.ratio = .gspoToken; $0.aggregation = .seqMeanTokenMean }, logp: lp, old: old, adv: adv)
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-12)
        assertClose(a.grad[0], b.grad[0], tol: 1e-12)
    }

    func testHybrid() throws {
        // lr = [0.05, 0.15]: ρ = [e^.05, e^.15], s = e^.1, all inside their ranges (seq ε 0.5).
        // average, w = 0.5, linear: ℓ_t = −(0.5ρ_t + 0.5s); loss = mean. s feeds both tokens' losses
        // (ds/dlogp_t = s/2), so grad_t = (−(0.5ρ_t + 0.25s) − 0.25s)/2 = −(0.5ρ_t + 0.5s)/2.
        let c = cfg { $0.ratio = .hybrid; $0.seqEpsLow = 0.5; $0.seqEpsHigh = 0.5 }
        let r = try policy(c, logp: [[0.05, 0.15]], old: [[0, 0]], adv: [[1, 1]])
        let s = e(0.1)
        XCTAssertEqual(r.loss, -(0.5 * (e(0.05) + e(0.15)) / 2 + 0.5 * s), accuracy: 1e-12)
        assertClose(r.grad[0], [-(0.5 * e(0.05) + 0.5 * s) / 2, -(0.5 * e(0.15) + 0.5 * s) / 2], tol: 1e-12)
        // Weight 1 on the token branch is the token loss, in either space.
        let lp: [[Double]] = [[0.4, -0.3, 0.1]], old: [[Double]] = [[0, 0, 0]], adv: [[Double]] = [[1, -1, 0.5]]
        let token = try policy(PolicyLossConfig(), logp: lp, old: old, adv: adv)
        for space in [PolicyLossConfig.Hybrid.Space.linear, .log] {
            let h = try policy(cfg { $0.ratio = .hybrid; $0.hybrid = .init(space: space, tokenWeight: 1) }, logp: lp, old: old, adv: adv)
            XCTAssertEqual(h.loss, token.loss, accuracy: 1e-12)
            assertClose(h.grad[0], token.grad[0], tol: 1e-12)
        }
        // Entropy mixing: w = H/max H; the max-entropy token uses the token branch only.
        let ent = try policy(cfg { $0.ratio = .hybrid; $0.hybrid = .init(mixing: .entropy); $0.seqEpsLow = 0.5; $0.seqEpsHigh = 0.5 },
                             logp: [[0.05, 0.15]], old: [[0, 0]], adv: [[1, 1]], entropies: [[0, 2]])
        XCTAssertEqual(ent.loss, -(s + e(0.15)) / 2, accuracy: 1e-12)
        // H = [1, 2, 3]: min-max weights [0, ½, 1] (the default), H/max H weights [⅓, ⅔, 1]; nothing clips.
        let lp3: [[Double]] = [[0.05, 0.15, 0.1]], s3 = e(0.1)
        func mixed(_ norm: PolicyLossConfig.Hybrid.EntropyNorm?) throws -> Double {
            try policy(cfg { $0.ratio = .hybrid; $0.hybrid = norm.map { .init(mixing: .entropy, entropyNorm: $0) } ?? .init(mixing: .entropy)
                             $0.seqEpsLow = 0.5; $0.seqEpsHigh = 0.5 },
                       logp: lp3, old: [[0, 0, 0]], adv: [[1, 1, 1]], entropies: [[1, 2, 3]]).loss
        }
        XCTAssertEqual(try mixed(nil), -(s3 + (e(0.15) + s3) / 2 + e(0.1)) / 3, accuracy: 1e-12)
        XCTAssertEqual(try mixed(.max), -((e(0.05) + 2 * s3) / 3 + (2 * e(0.15) + s3) / 3 + e(0.1)) / 3, accuracy: 1e-12)
        // An option of the other mixing is refused rather than ignored.
        XCTAssertThrowsError(try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"ratio":"hybrid","hybrid":{"mixing":"entropy","token_weight":0.3}}"#.utf8))) {
            XCTAssertEqual("\($0)", "hybrid: 'token_weight' is for mixing 'average' (mixing is 'entropy')")
        }
    }

    func testPrefixMin() throws {
        // lr = [0, −0.5, 0.2] → ρ = [1, e^−.5, e^.2], A = 1, ε = 0.2.
        // preceding (default): factors min_{k<t} ρ_k = [1, 1, e^−.5]; t0 −1; t1 max(−e^−.5, −0.8) = −e^−.5;
        // t2 e^−.5·max(−e^.2, −1.2) = −1.2·e^−.5, clipped (no gradient).
        let p = try policy(cfg { $0.ratio = .prefixMin }, logp: [[0, -0.5, 0.2]], old: [[0, 0, 0]], adv: [[1, 1, 1]])
        XCTAssertEqual(p.loss, (-1 - e(-0.5) - 1.2 * e(-0.5)) / 3, accuracy: 1e-12)
        assertClose(p.grad[0], [-1.0 / 3, -e(-0.5) / 3, 0], tol: 1e-12)
        // The first token's factor is 1 however low its ratio: only later tokens are down-weighted.
        let first = try policy(cfg { $0.ratio = .prefixMin }, logp: [[-0.1, 0]], old: [[0, 0]], adv: [[1, 1]])
        XCTAssertEqual(first.loss, (-e(-0.1) - e(-0.1)) / 2, accuracy: 1e-12)
        // weighted: m = [1, e^−.5, e^−.5]; t2 (m/ρ)·max(−e^.2, −1.2) = e^−.7·(−1.2), clipped.
        let w = try policy(cfg { $0.ratio = .prefixMin; $0.prefixMinVariant = .weighted }, logp: [[0, -0.5, 0.2]], old: [[0, 0, 0]], adv: [[1, 1, 1]])
        XCTAssertEqual(w.loss, (-1 - e(-0.5) - 1.2 * e(-0.7)) / 3, accuracy: 1e-12)
        assertClose(w.grad[0], [-1.0 / 3, -e(-0.5) / 3, 0], tol: 1e-12)
        // direct: ℓ_t = max(−m_t, −clip(m_t)); the gradient of m_2 flows to the arg-min token 1.
        let d = try policy(cfg { $0.ratio = .prefixMin; $0.prefixMinVariant = .direct }, logp: [[0, -0.5, 0.2]], old: [[0, 0, 0]], adv: [[1, 1, 1]])
        XCTAssertEqual(d.loss, (-1 - 2 * e(-0.5)) / 3, accuracy: 1e-12)
        assertClose(d.grad[0], [-1.0 / 3, -2 * e(-0.5) / 3, 0], tol: 1e-12)
    }

    func testPrefixMinEqualsTokenPPOWhenThePolicyHasNotMoved() throws {
        let lp: [[Double]] = [[-1.2, -0.3, -2.0], [-0.5]], adv: [[Double]] = [[1, -0.5, 2], [-1]]
        let token = try policy(PolicyLossConfig(), logp: lp, old: lp, adv: adv)
        let minpro = try policy(cfg { $0.ratio = .prefixMin }, logp: lp, old: lp, adv: adv)
        XCTAssertEqual(minpro.loss, token.loss, accuracy: 1e-12)
        assertClose(minpro.grad.flatMap { $0 }, token.grad.flatMap { $0 }, tol: 1e-12)
        let direct = try policy(cfg { $0.ratio = .prefixMin; $0.prefixMinVariant = .direct }, logp: lp, old: lp, adv: adv)
        XCTAssertEqual(direct.loss, token.loss, accuracy: 1e-12)
    }

    func testTurnLevelRatio() throws {
        // turns [0, 0, 1], lr [0.1, 0.3, −0.2]: turn ratios e^.2 (tokens 0, 1) and e^−.2 (token 2); A = 1.
        // e^.2 > 1.2 → clipped (−1.2, no grad); e^−.2 inside → −e^−.2, grad −e^−.2/3.
        let r = try policy(cfg { $0.ratio = .turn }, logp: [[0.1, 0.3, -0.2]], old: [[0, 0, 0]], adv: [[1, 1, 1]], turns: [[0, 0, 1]])
        XCTAssertEqual(r.loss, (-2.4 - e(-0.2)) / 3, accuracy: 1e-12)
        assertClose(r.grad[0], [0, 0, -e(-0.2) / 3], tol: 1e-12)
        // One token per turn is the token loss.
        let lp: [[Double]] = [[0.1, 0.3, -0.2]]
        let token = try policy(PolicyLossConfig(), logp: lp, old: [[0, 0, 0]], adv: [[1, -1, 1]])
        let turns = try policy(cfg { $0.ratio = .turn }, logp: lp, old: [[0, 0, 0]], adv: [[1, -1, 1]], turns: [[0, 1, 2]])
        XCTAssertEqual(turns.loss, token.loss, accuracy: 1e-12)
    }

    func testHAPOAdaptiveClipping() throws {
        // Entropies give ĥ = [−1, −.65, −.35, −.15, 0, 1] (Credit's HAPO tests). α = 1:
        // token 0 (ĥ = −1): ε_low = 0.2·2 = 0.4, so ρ = e^−.4 with A = −1 is inside → ℓ = ρ, grad ρ/6;
        // token 5 (ĥ = 1): ε_high = 0.4, so ρ = e^.3 with A = 1 is inside → −ρ, grad −ρ/6.
        let H: [[Double]] = [[0.01, 0.05, 0.2, 0.5, 1, 2]]
        let lp: [[Double]] = [[-0.4, 0, 0, 0, 0, 0.3]], adv: [[Double]] = [[-1, 1, 1, 1, 1, 1]]
        let r = try policy(cfg { $0.adaptiveClip = .init() }, logp: lp, old: [[0, 0, 0, 0, 0, 0]], adv: adv, entropies: H)
        XCTAssertEqual(r.loss, (e(-0.4) - 4 - e(0.3)) / 6, accuracy: 1e-12)
        assertClose(r.grad[0], [e(-0.4) / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -e(0.3) / 6], tol: 1e-12)
        // Without it both are clipped.
        let plain = try policy(PolicyLossConfig(), logp: lp, old: [[0, 0, 0, 0, 0, 0]], adv: adv)
        XCTAssertEqual(plain.loss, (0.8 - 4 - 1.2) / 6, accuracy: 1e-12)
    }

    /// HAPO's advantage redistribution in the loss, with the live ratio: neutral zone (0.9, 1.1)
    /// at ε = 0.2, β = 1, ĥ from the batch's entropies (about [−1, −.65, −.35, −.15, 0, 1]), A = 1.
    func testHAPORedistributionUsesTheLiveRatio() throws {
        let H: [[Double]] = [[0.01, 0.05, 0.2, 0.5, 1, 2]]
        let h = H[0].map(HAPO.EntropyStatistics(entropies: H[0]).normalized)
        // ρ: 1 (inside), e^.15 (outside), 1 (inside), e^−.2 (outside, below), 1 (inside), e^.3 (outside).
        let lp: [[Double]] = [[0, 0.15, 0, -0.2, 0, 0.3]], old: [[Double]] = [[0, 0, 0, 0, 0, 0]], adv: [[Double]] = [[1, 1, 1, 1, 1, 1]]
        // ĥ ≤ 0 inside → A(1 + ĥ): tokens 0, 2, 4; ĥ ≤ 0 outside → A: tokens 1, 3; ĥ > 0 outside → A(1 + ĥ) = 2: token 5.
        let a = [1 + h[0], 1, 1 + h[2], 1, 1 + h[4], 1 + h[5]]
        XCTAssertEqual(a[0], 0, accuracy: 1e-12)
        XCTAssertEqual(a[5], 2, accuracy: 1e-12)
        let r = try policy(cfg { $0.adaptiveAdvantage = .init() }, logp: lp, old: old, adv: adv, entropies: H)
        // ℓ = −ρA', except token 5, clipped at 1.2: −1.2·2 with no gradient.
        let loss = [-a[0], -e(0.15) * a[1], -a[2], -e(-0.2) * a[3], -a[4], -1.2 * a[5]]
        XCTAssertEqual(r.loss, loss.reduce(0, +) / 6, accuracy: 1e-12)
        assertClose(r.grad[0], [-a[0] / 6, -e(0.15) / 6, -a[2] / 6, -e(-0.2) / 6, -a[4] / 6, 0], tol: 1e-12)
        XCTAssertEqual(r.metrics["redistributed_token_fraction"]!, 3.0 / 6, accuracy: 1e-12)   // tokens 0, 2, 5 (ĥ₄ = 0)
        // On-policy (ρ = 1 everywhere) only the low-entropy tokens change; off, the loss is the plain one.
        let plain = try policy(PolicyLossConfig(), logp: lp, old: old, adv: adv)
        XCTAssertNotEqual(plain.loss, r.loss)
        // β = 0 leaves every advantage as it is: the plain loss.
        let off = try policy(cfg { $0.adaptiveAdvantage = .init(beta: 0) }, logp: lp, old: old, adv: adv, entropies: H)
        XCTAssertEqual(off.loss, plain.loss, accuracy: 1e-12)
        assertClose(off.grad[0], plain.grad[0], tol: 1e-12)
        XCTAssertEqual(error(cfg { $0.adaptiveAdvantage = .init(signFix: false); $0.adaptiveClip = .init() }),
                       "objective: 'adaptive_advantage' and 'adaptive_clip' share one entropy score: give them the same 'entropy_pivot' and 'sign_fix'")
    }

    /// Adaptive clipping and redistribution together equal the released code's loss (fixtures from
    /// scripts/reference/hapo_official.py, starriver030515/HAPO @7671dde, with its ĥ: sign_fix false).
    func testHAPOLossMatchesTheOfficialCode() throws {
        struct Case: Decodable { let entropies: [Double], logprobs: [Double], old_logprobs: [Double], advantages: [Double]; let loss: Double }
        struct File: Decodable { let loss: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../CreditTests/Fixtures/hapo_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        XCTAssertEqual(file.loss.count, 30)
        let config = cfg { $0.adaptiveClip = .init(signFix: false); $0.adaptiveAdvantage = .init(signFix: false) }
        for (k, c) in file.loss.enumerated() {
            let r = try policy(config, logp: [c.logprobs], old: [c.old_logprobs], adv: [c.advantages], entropies: [c.entropies])
            XCTAssertEqual(r.loss, c.loss, accuracy: 1e-9, "case \(k)")
        }
    }

    func error(_ c: PolicyLossConfig) -> String {
        do { _ = try policy(c, logp: [[0]], old: [[0]], adv: [[1]], entropies: [[1]]); return "no error" } catch { return "\(error)" }
    }

    func testMismatchCorrections() throws {
        // k = exp(old − rollout) = [e, e^−1]; ℓ = −A with ρ = 1, A = 1.
        let base: (PolicyLossConfig.Mismatch.Mode) throws -> (loss: Double, grad: [[Double]], metrics: [String: Double]) = { mode in
            try policy(cfg { $0.mismatch = .init(mode: mode) }, logp: [[0, 0]], old: [[0, 0]], adv: [[1, 1]], rollout: [[-1, 1]])
        }
        // TIS: min(k, 2) = [2, e^−1].
        XCTAssertEqual(try base(.tis).loss, -(2 + e(-1)) / 2, accuracy: 1e-12)
        // IcePop: k inside [0.5, 5] kept as weight, else 0; masked tokens stay in the denominator.
        let ice = try base(.icepop)
        XCTAssertEqual(ice.loss, -e(1) / 2, accuracy: 1e-12)
        XCTAssertEqual(ice.metrics["masked_fraction"]!, 0.5, accuracy: 1e-12)
        // seq-mask-TIS: geometric mean exp(mean log k) = 1 → kept and weighted by k.
        XCTAssertEqual(try base(.seqMaskTIS).loss, -(e(1) + e(-1)) / 2, accuracy: 1e-12)
        let far = try policy(cfg { $0.mismatch = .init(mode: .seqMaskTIS) }, logp: [[0, 0]], old: [[0, 0]], adv: [[1, 1]], rollout: [[-2, -2]])
        XCTAssertEqual(far.loss, 0, accuracy: 1e-12)   // e² > 5: the whole sequence is masked
    }

    func testKLAndEntropyRegularisers() throws {
        // Δ = logp − ref = [0.5, −0.3]; k3 = e^−Δ − 1 + Δ; d k3/d logp = 1 − e^−Δ. ρ = 1, A = 0.
        let k3 = [e(-0.5) - 0.5, e(0.3) - 1.3]
        let r = try policy(cfg { $0.klCoef = 0.1 }, logp: [[0.5, -0.3]], old: [[0.5, -0.3]], adv: [[0, 0]], ref: [[0, 0]])
        XCTAssertEqual(r.loss, 0.1 * (k3[0] + k3[1]) / 2, accuracy: 1e-12)
        assertClose(r.grad[0], [0.1 * (1 - e(-0.5)) / 2, 0.1 * (1 - e(0.3)) / 2], tol: 1e-12)
        XCTAssertEqual(r.metrics["kl"]!, (k3[0] + k3[1]) / 2, accuracy: 1e-12)
        let k1 = try policy(cfg { $0.klCoef = 1; $0.klEstimator = .k1 }, logp: [[0.5, -0.3]], old: [[0.5, -0.3]], adv: [[0, 0]], ref: [[0, 0]])
        XCTAssertEqual(k1.loss, 0.1, accuracy: 1e-12)
        let k2 = try policy(cfg { $0.klCoef = 1; $0.klEstimator = .k2 }, logp: [[0.5, -0.3]], old: [[0.5, -0.3]], adv: [[0, 0]], ref: [[0, 0]])
        XCTAssertEqual(k2.loss, (0.125 + 0.045) / 2, accuracy: 1e-12)
        let ent = try policy(cfg { $0.entropyCoef = 0.01 }, logp: [[0, 0]], old: [[0, 0]], adv: [[1, 1]], entropies: [[1, 3]])
        XCTAssertEqual(ent.loss, -1 - 0.01 * 2, accuracy: 1e-12)
        XCTAssertEqual(ent.metrics["entropy"]!, 2, accuracy: 1e-12)
        // Credit's weights scale the whole per-token loss, KL included (TW-GRPO's official trainer:
        // Σ mask·w·(pg + β·KL) / Σ mask): weights [2, 1] → (2·(−A + βk3₀) + (−A + βk3₁)) / 2.
        let w = try policy(cfg { $0.klCoef = 0.1 }, logp: [[0.5, -0.3]], old: [[0.5, -0.3]], adv: [[1, 1]], ref: [[0, 0]], weights: [[2, 1]])
        XCTAssertEqual(w.loss, (2 * (-1 + 0.1 * k3[0]) + (-1 + 0.1 * k3[1])) / 2, accuracy: 1e-12)
        assertClose(w.grad[0], [2 * (-1 + 0.1 * (1 - e(-0.5))) / 2, (-1 + 0.1 * (1 - e(0.3))) / 2], tol: 1e-12)
    }

    func testExtremeInputsStayFinite() throws {
        for config in [PolicyLossConfig(), cfg { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean }, cfg { $0.ratio = .prefixMin }, cfg { $0.ratio = .hybrid },
                       cfg { $0.klCoef = 1 }, cfg { $0.dualClip = 3 }, cfg { $0.clip = false }] {
            let r = try policy(config, logp: [[50, -50, 0]], old: [[0, 0, -50]], adv: [[1, -1, 1]], ref: [[-100, 100, 0]])
            XCTAssertTrue(r.loss.isFinite, "\(config)")
            XCTAssertTrue(r.grad[0].allSatisfy(\.isFinite), "\(config)")
        }
        // Every token masked: loss 0, gradient 0, no NaN.
        let masked = try policy(PolicyLossConfig(), logp: [[0.3, 0.1]], old: [[0, 0]], adv: [[1, 1]], weights: [[0, 0]])
        XCTAssertEqual(masked.loss, 0)
        XCTAssertEqual(masked.grad[0], [0, 0])
        for a in PolicyLossConfig.Aggregation.allCases {
            XCTAssertEqual(try policy(cfg { $0.aggregation = a }, logp: [[0.3]], old: [[0]], adv: [[1]], weights: [[0]]).loss, 0)
        }
    }

    func testBadInputsNameTheField() throws {
        func error(_ c: PolicyLossConfig, rollout: [[Double]]? = nil) -> String {
            do { _ = try policy(c, logp: [[0]], old: [[0]], adv: [[1]], rollout: rollout); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(cfg { $0.mismatch = .init(mode: .tis) }), "objective: mismatch correction 'tis' needs 'rollout_logprobs'")
        XCTAssertEqual(error(cfg { $0.klCoef = 0.1 }), "objective: kl_coef needs 'ref_logprobs'")
        XCTAssertEqual(error(cfg { $0.adaptiveClip = .init() }), "objective: adaptive_clip needs 'entropies'")
        XCTAssertEqual(error(cfg { $0.ratio = .turn }), "objective: ratio 'turn' needs 'turns'")
        XCTAssertEqual(error(cfg { $0.hybrid = .init() }), "objective: 'hybrid' is set but 'ratio' is 'token' (use ratio: hybrid)")
        XCTAssertEqual(error(cfg { $0.dualClip = 1 }), "objective: 'dual_clip' must be > 1, got 1.0")
        XCTAssertEqual(error(cfg { $0.ratio = .sequence; $0.aggregation = .seqMeanTokenMean; $0.adaptiveClip = .init() }),
                       "objective: 'adaptive_clip' needs a token-level ratio, not 'sequence'")
        XCTAssertEqual(cfg { $0.ratio = .gspoToken }.aggregation, .seqMeanTokenMean)   // GSPO's own, unless set
        XCTAssertEqual(cfg { $0.ratio = .token }.aggregation, .tokenMean)
        XCTAssertEqual(error(cfg { $0.ratio = .gspoToken; $0.aggregation = .tokenMean }), "objective: ratio 'gspo_token' (GSPO) is a sequence-level objective and needs aggregation "
                       + "'seq_mean_token_mean' (the default for it; verl's compute_policy_loss_gspo forces it), not 'token_mean'")
        XCTAssertEqual(error(cfg { $0.normConstant = 5 }), "objective: 'norm_constant' only applies to aggregation 'seq_mean_token_sum_norm'")
        let negative = (try? policy(cfg { $0.ratio = .turn }, logp: [[0]], old: [[0]], adv: [[1]], turns: [[-1]])) == nil
        XCTAssertTrue(negative)
        let shape: String = try withTorchErrors {
            let b = PolicyBatch(logprobs: Tensor.zeros([2, 3]), oldLogprobs: Tensor.zeros([2, 3]), advantages: Tensor.zeros([2, 2]), mask: Tensor.ones([2, 3]))
            do { _ = try PolicyLoss(PolicyLossConfig())(b); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(shape, "objective: 'advantages' has shape [2, 2] but logprobs has [2, 3]")
    }

    func testConfigDecoding() throws {
        let c = try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"""
        {"ratio": "hybrid", "hybrid": {"mixing": "entropy", "space": "log"}, "eps_low": 0.1, "eps_high": 0.28,
         "dual_clip": 3, "mismatch": {"mode": "icepop", "low": 0.4}, "aggregation": "seq_mean_token_sum_norm",
         "norm_constant": 3000, "kl_coef": 0.04, "kl_estimator": "k2", "entropy_coef": 0.001}
        """#.utf8))
        XCTAssertEqual(c.ratio, .hybrid)
        XCTAssertEqual(c.hybrid, .init(mixing: .entropy, space: .log))
        XCTAssertEqual(c.mismatch, .init(mode: .icepop, low: 0.4))
        XCTAssertEqual(c.normConstant, 3000)
        XCTAssertEqual(try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"ratio": "hybrid"}"#.utf8)).hybrid, .init())
        let gspo = try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"ratio": "sequence"}"#.utf8))
        XCTAssertEqual(gspo.aggregation, .seqMeanTokenMean)
        XCTAssertNil(gspo.aggregationChoice)
        XCTAssertThrowsError(try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"ratio": "sequence", "aggregation": "token_mean"}"#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"eps": 0.2}"#.utf8))) { e in
            XCTAssertTrue("\(e)".hasPrefix("objective: unknown key 'eps' (known: adaptive_advantage, adaptive_clip, aggregation,"), "\(e)")
        }
        XCTAssertThrowsError(try JSONDecoder().decode(PolicyLossConfig.self, from: Data(#"{"mismatch": {"mode": "tis", "c": 2}}"#.utf8))) { e in
            XCTAssertEqual("\(e)", "mismatch: unknown key 'c' (known: cap, high, low, mode)")
        }
        // Round trip.
        let back = try JSONDecoder().decode(PolicyLossConfig.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(back, c)
    }
}

func assertClose(_ a: [Double], _ b: [Double], tol: Double = 1e-9, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (k, (x, y)) in zip(a, b).enumerated() where Swift.abs(x - y) > tol * Swift.max(1, Swift.abs(y)) {
        XCTFail("element \(k): \(x) vs \(y)", file: file, line: line)
        return
    }
}
