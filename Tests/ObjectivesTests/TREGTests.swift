import Foundation
import XCTest
@testable import Objectives

/// T-REG (a proposal: the form secondary summaries give): DPO plus α·w·(L(y_w) + L(y_l)), L(y) =
/// −Σ β·r̂_t·log π_θ(y_t), w = sg σ(−βu); by hand, its gradient, its reduction to DPO and its errors.
final class TREGTests: XCTestCase {
    func evaluate(_ json: String) throws -> [String: Any] { try ObjectiveJSON.evaluate(Data(json.utf8)) }

    func request(_ objective: String, chosen: String = #""revision_rewards":[0.2,0.1]"#, rejected: String = #""revision_rewards":[0.3]"#) -> String {
        #"{"objective":\#(objective),"pairs":[{"chosen":{"logprobs":[-1,-2],"ref_logprobs":[-1.5,-2.5],\#(chosen)},"rejected":{"logprobs":[-3],"ref_logprobs":[-2],\#(rejected)}}]}"#
    }

    /// u = (0.5 + 0.5) − (−1) = 2, β 0.1: DPO softplus(−0.2) = 0.598139, w = σ(−0.2) = 0.450166;
    /// L(y_w) = −0.1·(0.2·−1 + 0.1·−2) = 0.04, L(y_l) = −0.1·(0.3·−3) = 0.09; α 0.5 adds 0.029261.
    func testTheLossAndItsGradientByHand() throws {
        let out = try evaluate(request(#"{"name":"treg","beta":0.1,"alpha":0.5}"#))
        let w = 1 / (1 + Foundation.exp(0.2)), dpo = Foundation.log(1 + Foundation.exp(-0.2))
        XCTAssertEqual(out["loss"] as! Double, dpo + 0.5 * w * 0.13, accuracy: 1e-12)
        XCTAssertEqual(out["loss"] as! Double, 0.6273997, accuracy: 1e-7)
        let g = (out["grad_logprobs"] as! [[String: [Double]]])[0]
        // ∂/∂log π_w,t = −β·w + α·w·(−β·r̂_t); ∂/∂log π_l = β·w + α·w·(−β·r̂) (w carries no gradient).
        XCTAssertEqual(g["chosen"]![0], -0.1 * w - 0.5 * w * 0.02, accuracy: 1e-12)
        XCTAssertEqual(g["chosen"]![1], -0.1 * w - 0.5 * w * 0.01, accuracy: 1e-12)
        XCTAssertEqual(g["rejected"]![0], 0.1 * w - 0.5 * w * 0.03, accuracy: 1e-12)
    }

    func testItReducesToDPO() throws {
        let dpo = try evaluate(request(#"{"name":"dpo","beta":0.1}"#, chosen: #""weights":null"#, rejected: #""weights":null"#))["loss"] as! Double
        XCTAssertEqual(try evaluate(request(#"{"name":"treg","beta":0.1,"alpha":0}"#))["loss"] as! Double, dpo, accuracy: 1e-12)
        let zero = try evaluate(request(#"{"name":"treg","beta":0.1,"alpha":0.5}"#, chosen: #""revision_rewards":[0,0]"#, rejected: #""revision_rewards":[0]"#))
        XCTAssertEqual(zero["loss"] as! Double, dpo, accuracy: 1e-12)
    }

    func testBadInputsAreNamed() {
        func error(_ json: String) -> String { do { _ = try evaluate(json); return "no error" } catch { return "\(error)" } }
        XCTAssertEqual(error(request(#"{"name":"treg"}"#, chosen: #""weights":null"#)),
                       "objective: 'treg' needs chosen 'revision_rewards' (r̂_t in [−0.5, 0.5] per token; training computes them from the reference under the revision prompts)")
        XCTAssertEqual(error(request(#"{"name":"dpo"}"#)), "objective: chosen 'revision_rewards' is given but 'dpo' does not use it")
        XCTAssertEqual(error(request(#"{"name":"treg"}"#, chosen: #""revision_rewards":[0.2]"#)), "pairs[0].chosen: 'revision_rewards' has 1 values but 'logprobs' has 2")
        XCTAssertEqual(error(request(#"{"name":"dpo","better":"x"}"#)), "objective: 'better' is read by objective treg only, not 'dpo'")
        XCTAssertEqual(error(request(#"{"name":"treg","better":"x","worse":"x"}"#)),
                       "objective: treg's 'better' and 'worse' revision instructions must be two different, non-empty texts")
        XCTAssertEqual(error(request(#"{"name":"treg","alpha":-1}"#)), "objective: treg's 'alpha' must be ≥ 0 and finite, got -1.0")
    }
}
