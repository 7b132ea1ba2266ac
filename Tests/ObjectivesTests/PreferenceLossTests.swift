import Foundation
import XCTest
@testable import Objectives
@testable import Torch

final class PreferenceLossTests: XCTestCase {
    struct SideIn {
        var logp: [[Double]], ref: [[Double]]
        var weights: [[Double]]? = nil, kl: [[Double]]? = nil, klWeights: [[Double]]? = nil, rm: [[Double]]? = nil
        /// Per pair: 1 hallucinated, 0 factual (F-DPO).
        var h: [Double]? = nil
    }

    func evaluate(_ config: PreferenceLoss.Config, _ w: SideIn, _ l: SideIn) throws
        -> (loss: Double, chosen: [[Double]], rejected: [[Double]], metrics: [String: Double], rewards: [Double])
    {
        try withTorchErrors {
            func side(_ s: SideIn) -> (PreferenceLoss.Side, Tensor) {
                let (lp, mask) = padded(s.logp, dtype: .float64)
                lp.requiresGrad = true
                let t = { (r: [[Double]]?) in r.map { padded($0, dtype: .float64).values } }
                return (PreferenceLoss.Side(logprobs: lp, refLogprobs: t(s.ref)!, mask: mask, weights: t(s.weights), kl: t(s.kl),
                                            klWeights: t(s.klWeights), rmLogprobs: t(s.rm), hallucinated: t(s.h.map { [$0] })?.squeezed(dim: 0)), lp)
            }
            let (cw, lw) = side(w), (cl, ll) = side(l)
            let (loss, metrics, rewards) = try PreferenceLoss(config)(chosen: cw, rejected: cl)
            loss.backward()
            func rows(_ t: Tensor, _ r: [[Double]]) throws -> [[Double]] {
                let g = try t.doubles(), n = t.size(1)
                return r.enumerated().map { i, row in Array(g[(i * n)..<(i * n + row.count)]) }
            }
            return (try loss.item(), try rows(lw.grad!, w.logp), try rows(ll.grad!, l.logp), metrics, try rewards.chosen.doubles())
        }
    }

    // Chosen Δ = [0.3, 0.2] (Σ 0.5), rejected Δ = [−0.3] (Σ −0.3): u = 0.8, β = 0.1.
    let w = SideIn(logp: [[-1.0, -2.0]], ref: [[-1.3, -2.2]])
    let l = SideIn(logp: [[-3.0]], ref: [[-2.7]])
    func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    func testDPO() throws {
        // L = −log σ(βu) = log(1 + e^{−0.08}); dL/dlogp_w = −β(1 − σ(βu)), dL/dlogp_l = +β(1 − σ(βu)).
        let r = try evaluate(.init(), w, l)
        XCTAssertEqual(r.loss, Foundation.log(1 + Foundation.exp(-0.08)), accuracy: 1e-12)
        let g = 0.1 * (1 - sigmoid(0.08))
        assertClose(r.chosen[0], [-g, -g], tol: 1e-12)
        assertClose(r.rejected[0], [g], tol: 1e-12)
        // Implicit rewards: β Σ Δ; the token rewards sum to the sequence reward ("From r to Q*").
        XCTAssertEqual(r.metrics["chosen_reward"]!, 0.05, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["rejected_reward"]!, -0.03, accuracy: 1e-12)
        XCTAssertEqual(r.metrics["reward_accuracy"]!, 1)
        assertClose(r.rewards, [0.03, 0.02], tol: 1e-12)
        XCTAssertEqual(r.rewards.reduce(0, +), r.metrics["chosen_reward"]!, accuracy: 1e-12)
    }

    func testIPO() throws {
        // L = (u − 1/(2β))² = (0.8 − 5)² = 17.64; dL/dlogp_w = 2(u − 5) = −8.4.
        let r = try evaluate(.init(name: .ipo), w, l)
        XCTAssertEqual(r.loss, 17.64, accuracy: 1e-10)
        assertClose(r.chosen[0], [-8.4, -8.4], tol: 1e-10)
        assertClose(r.rejected[0], [8.4], tol: 1e-10)
    }

    func testTDPO() throws {
        // Σ KL_w = 0.2, Σ KL_l = 0.1. TDPO1: δ = 0.1 − 0.2 = −0.1 → L = log(1 + e^{−β(0.9)}).
        var wk = w, lk = l
        wk.kl = [[0.15, 0.05]]
        lk.kl = [[0.1]]
        XCTAssertEqual(try evaluate(.init(name: .tdpo1), wk, lk).loss, Foundation.log(1 + Foundation.exp(-0.09)), accuracy: 1e-12)
        // TDPO2, α = 0.5: margin 0.5·(0.1 − 0.2) = −0.05 → L = log(1 + e^{−β·0.85}).
        XCTAssertEqual(try evaluate(.init(name: .tdpo2), wk, lk).loss, Foundation.log(1 + Foundation.exp(-0.085)), accuracy: 1e-12)
        // Equal KL on both sides, or α = 0 for TDPO2: DPO.
        let dpo = try evaluate(.init(), w, l).loss
        lk.kl = [[0.2]]
        XCTAssertEqual(try evaluate(.init(name: .tdpo1), wk, lk).loss, dpo, accuracy: 1e-12)
        lk.kl = [[0.1]]
        XCTAssertEqual(try evaluate(.init(name: .tdpo2, alpha: 0), wk, lk).loss, dpo, accuracy: 1e-12)
    }

    func testTGDPO() throws {
        // Δ_rm = rm − ref: chosen [0.5, 0], rejected [1]; β = 0.1, α = 0.5:
        // z = Σ β(1 + αβΔrm_w)Δ_w − Σ β(1 − αβΔrm_l)Δ_l = 0.1(1.025·0.3 + 0.2) − 0.1(0.95·(−0.3)) = 0.07925.
        var wr = w, lr = l
        wr.rm = [[-0.8, -2.2]]
        lr.rm = [[-1.7]]
        let r = try evaluate(.init(name: .tgdpo), wr, lr)
        XCTAssertEqual(r.loss, Foundation.log(1 + Foundation.exp(-0.07925)), accuracy: 1e-12)
        let s = 1 - sigmoid(0.07925)
        assertClose(r.chosen[0], [-s * 0.1 * 1.025, -s * 0.1], tol: 1e-12)
        XCTAssertEqual(try evaluate(.init(name: .tgdpo, alpha: 0), wr, lr).loss, try evaluate(.init(), w, l).loss, accuracy: 1e-12)
    }

    func testSparsePOAndWeightedDPO() throws {
        var ws = w, ls = l
        ws.kl = [[0, 0]]
        ls.kl = [[0]]
        let dpo = try evaluate(.init(), w, l).loss
        // Masks of ones and zero KL: DPO; masks of ones: TDPO1.
        XCTAssertEqual(try evaluate(.init(name: .sparsepo), ws, ls).loss, dpo, accuracy: 1e-12)
        ws.kl = [[0.15, 0.05]]
        ls.kl = [[0.1]]
        XCTAssertEqual(try evaluate(.init(name: .sparsepo), ws, ls).loss, try evaluate(.init(name: .tdpo1), ws, ls).loss, accuracy: 1e-12)
        // Reward mask [1, 0] on the chosen side: u' = β(0.3 + 0.3) = 0.06; KL masks default to it:
        // δ = β(0.1 − 0.15) = −0.005 → L = log(1 + e^{−0.065}).
        ws.weights = [[1, 0]]
        XCTAssertEqual(try evaluate(.init(name: .sparsepo), ws, ls).loss, Foundation.log(1 + Foundation.exp(-0.065)), accuracy: 1e-12)
        // Weighted DPO (cDPO): rejected weights [0.5] → β(0.5 − 0.5·(−0.3)) = 0.065.
        var lw = l
        lw.weights = [[0.5]]
        XCTAssertEqual(try evaluate(.init(name: .weightedDPO), w, lw).loss, Foundation.log(1 + Foundation.exp(-0.065)), accuracy: 1e-12)
        lw.weights = [[1]]
        XCTAssertEqual(try evaluate(.init(name: .weightedDPO), w, lw).loss, dpo, accuracy: 1e-12)
    }

    /// F-DPO as the authors' `FactualDPOTrainer.dpo_loss`: logits = u − δ(h_l − h_w), loss −log σ(β·logits).
    func testFDPO() throws {
        func labelled(_ s: SideIn, _ h: Double) -> SideIn { var s = s; s.h = [h]; return s }
        // A factual chosen and a hallucinated rejected response: β(u − δ) = 0.1 (0.8 − 10) = −0.92.
        let r = try evaluate(.init(name: .fdpo), labelled(w, 0), labelled(l, 1))
        XCTAssertEqual(r.loss, Foundation.log(1 + Foundation.exp(0.92)), accuracy: 1e-12)
        let g = 0.1 * (1 - sigmoid(-0.92))
        assertClose(r.chosen[0], [-g, -g], tol: 1e-12)
        assertClose(r.rejected[0], [g], tol: 1e-12)
        // Unflipped (1, 0) pairs get +δ, as in the official code (the pair file's flip avoids them).
        XCTAssertEqual(try evaluate(.init(name: .fdpo), labelled(w, 1), labelled(l, 0)).loss, Foundation.log(1 + Foundation.exp(-1.08)), accuracy: 1e-12)
        // Equal labels, or δ = 0: DPO.
        let dpo = try evaluate(.init(), w, l).loss
        for (hw, hl, delta) in [(0.0, 0.0, 10.0), (1, 1, 10), (0, 1, 0)] {
            XCTAssertEqual(try evaluate(.init(name: .fdpo, delta: delta), labelled(w, hw), labelled(l, hl)).loss, dpo, accuracy: 1e-12)
        }
        // Two pairs with their own labels: the mean of their losses.
        let w2 = SideIn(logp: w.logp + w.logp, ref: w.ref + w.ref, h: [0, 0]), l2 = SideIn(logp: l.logp + l.logp, ref: l.ref + l.ref, h: [1, 0])
        XCTAssertEqual(try evaluate(.init(name: .fdpo, beta: 0.1, delta: 2), w2, l2).loss,
                       (Foundation.log(1 + Foundation.exp(0.12)) + Foundation.log(1 + Foundation.exp(-0.08))) / 2, accuracy: 1e-12)
        func error(_ c: PreferenceLoss.Config, _ a: SideIn, _ b: SideIn) -> String {
            do { _ = try evaluate(c, a, b); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(.init(name: .fdpo), w, labelled(l, 1)), "objective: 'fdpo' needs chosen 'hallucinated' (1 or 0 per response)")
        XCTAssertEqual(error(.init(), labelled(w, 0), l), "objective: chosen 'hallucinated' is given but 'dpo' does not use it")
        XCTAssertEqual(error(.init(name: .fdpo), SideIn(logp: w.logp, ref: w.ref, h: [0, 1]), labelled(l, 1)),
                       "objective: chosen 'hallucinated' has shape [2] but there are 1 pairs")
    }

    func testExtremeMarginsAndErrors() throws {
        let big = SideIn(logp: [[60]], ref: [[-60]]), small = SideIn(logp: [[-60]], ref: [[60]])
        for name in [PreferenceLoss.Name.dpo, .weightedDPO] {
            let r = try evaluate(.init(name: name, beta: 1), small, big)   // u = −240: loss ≈ 240, finite
            XCTAssertEqual(r.loss, 240, accuracy: 1e-9)
            XCTAssertTrue(r.chosen[0].allSatisfy(\.isFinite))
        }
        func error(_ c: PreferenceLoss.Config, _ a: SideIn, _ b: SideIn) -> String {
            do { _ = try evaluate(c, a, b); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(.init(name: .tdpo1), w, l), "objective: 'tdpo1' needs chosen 'kl'")
        var ww = w
        ww.weights = [[1, 1]]
        XCTAssertEqual(error(.init(), ww, l), "objective: chosen 'weights' is given but 'dpo' does not use it")
        XCTAssertEqual(error(.init(name: .tgdpo), w, l), "objective: 'tgdpo' needs chosen 'rm_logprobs'")
    }
}

final class ObjectiveJSONTests: XCTestCase {
    func evaluate(_ json: String) throws -> [String: Any] { try ObjectiveJSON.evaluate(Data(json.utf8)) }

    func testPolicyRequest() throws {
        let out = try evaluate(#"{"objective":{},"trajectories":[{"logprobs":[0.1,0.5],"old_logprobs":[0,0],"advantages":[1,1]},{"logprobs":[-0.5],"old_logprobs":[0],"advantages":[-1]}]}"#)
        XCTAssertEqual(out["loss"] as! Double, (-Foundation.exp(0.1) - 1.2 + 0.8) / 3, accuracy: 1e-12)
        let g = out["grad_logprobs"] as! [[Double]]
        XCTAssertEqual(g.map(\.count), [2, 1])
        XCTAssertEqual(g[0][0], -Foundation.exp(0.1) / 3, accuracy: 1e-12)
        XCTAssertNotNil((out["metrics"] as! [String: Double])["clip_fraction_high"])
    }

    func testPairRequest() throws {
        let out = try evaluate(#"{"objective":{"name":"dpo","beta":0.1},"pairs":[{"chosen":{"logprobs":[-1,-2],"ref_logprobs":[-1.3,-2.2]},"rejected":{"logprobs":[-3],"ref_logprobs":[-2.7]}}]}"#)
        XCTAssertEqual(out["loss"] as! Double, Foundation.log(1 + Foundation.exp(-0.08)), accuracy: 1e-12)
        let g = (out["grad_logprobs"] as! [[String: [Double]]])[0]
        XCTAssertEqual(g["chosen"]!.count, 2)
        XCTAssertEqual(g["rejected"]!.count, 1)
        let tr = (out["token_rewards"] as! [[String: [Double]]])[0]
        XCTAssertEqual(tr["chosen"]![0], 0.03, accuracy: 1e-12)
        let f = try evaluate(#"{"objective":{"name":"fdpo","beta":0.1,"delta":10},"pairs":[{"chosen":{"logprobs":[-1,-2],"ref_logprobs":[-1.3,-2.2],"hallucinated":0},"rejected":{"logprobs":[-3],"ref_logprobs":[-2.7],"hallucinated":1}}]}"#)
        XCTAssertEqual(f["loss"] as! Double, Foundation.log(1 + Foundation.exp(0.92)), accuracy: 1e-12)
    }

    func testBadRequests() {
        func error(_ json: String) -> String { do { _ = try evaluate(json); return "no error" } catch { return "\(error)" } }
        XCTAssertEqual(error(#"{"objective":{},"trajectories":[]}"#), "objective: the batch is empty (no trajectories)")
        XCTAssertEqual(error(#"{"objective":{}}"#), "request: give either 'trajectories' (policy loss) or 'pairs' (preference loss)")
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0,0],"old_logprobs":[0],"advantages":[1,1]}]}"#),
                       "trajectories[0]: 'old_logprobs' has 1 values but 'logprobs' has 2")
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0],"old_logprob":[0],"advantages":[1]}]}"#).prefix(37),
                       "trajectory: unknown key 'old_logprob'")
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0],"advantages":[1]}]}"#), "trajectories[0].old_logprobs is missing")
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0],"old_logprobs":[0],"advantages":[1],"weights":[1]},{"logprobs":[0],"old_logprobs":[0],"advantages":[1]}]}"#),
                       "objective: 'weights' must be given for every trajectory or none")
        XCTAssertEqual(error(#"{"objective":{"name":"dpo"},"pairs":[]}"#), "objective: the batch has no pairs")
        XCTAssertEqual(error(#"{"objective":{"name":"dpo","mask":"file"},"pairs":[]}"#), "objective: 'mask' is read by objective sparsepo only, not 'dpo'")
        XCTAssertEqual(error(#"{"objective":{"name":"dpo","delta":5},"pairs":[]}"#), "objective: 'delta' is read by objective fdpo only, not 'dpo'")
        XCTAssertEqual(error(#"{"objective":{"name":"fdpo","delta":-1},"pairs":[]}"#), "objective: 'delta' must be ≥ 0 and finite, got -1.0")
        XCTAssertEqual(error(#"{"objective":{"name":"fdpo"},"pairs":[{"chosen":{"logprobs":[-1],"ref_logprobs":[-1],"hallucinated":0.5},"rejected":{"logprobs":[-1],"ref_logprobs":[-1],"hallucinated":1}}]}"#),
                       "pair side: 'hallucinated' must be 1 or 0, got 0.5")
        XCTAssertEqual(error(#"{"objective":{"name":"fdpo"},"pairs":[{"chosen":{"logprobs":[-1],"ref_logprobs":[-1]},"rejected":{"logprobs":[-1],"ref_logprobs":[-1],"hallucinated":1}}]}"#),
                       "objective: 'fdpo' needs chosen 'hallucinated' (1 or 0 per response)")
        XCTAssertEqual(error(#"{"objective":{"name":"sparsepo","mask":"activations"},"pairs":[]}"#),
                       "objective: 'mask' chooses where training takes SparsePO's masks from; tokenwise objective reads them from each side's 'weights'")
        // Valid JSON with a number that does not fit an integer field was reported as "not valid JSON".
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0],"old_logprobs":[0],"advantages":[1],"turns":[1e30]}]}"#),
                       "trajectories[0].turns[0] is 1e+30; it must be a whole number (at most 9223372036854775807 in size)")
        XCTAssertEqual(error(#"{"trajectories":[{"logprobs":[0],"old_logprobs":[0],"advantages":[1]}"#), "not valid JSON (Unexpected end of file during JSON parse.)")
        // A loss that overflows is an error naming the field, not a serialisation failure.
        let huge = try! evaluate(#"{"objective":{"ratio":"token","clip":false},"trajectories":[{"logprobs":[800],"old_logprobs":[0],"advantages":[1e308]}]}"#)
        XCTAssertThrowsError(try ObjectiveJSON.encode(huge)) { XCTAssertTrue("\($0)".hasSuffix("the inputs overflow double precision"), "\($0)") }
    }
}
