import Foundation
import Models
import Objectives
import Torch
import XCTest
@testable import Training

/// cDPO's contrastive estimation: against a full teacher-forced forward of both models, its
/// reductions (one model twice, β 0), the weights it writes and the pairs it refuses.
final class CriticalTokensTests: XCTestCase {
    /// softmax((1 + β)·z⁺ − β·z⁻)[y_t] computed from each model's logits over the whole sequence.
    func byHand(_ pos: CausalLM, _ neg: CausalLM, prompt: [Int], response: [Int], beta: Double) throws -> [Double] {
        try withTorchErrors {
            try withNoGrad {
                let ids = Tensor((prompt + response).map(Int64.init), shape: [1, prompt.count + response.count])
                let zp = try pos(ids).to(dtype: .float64), zn = try neg(ids).to(dtype: .float64)
                let lp = (zp * (1 + beta) - zn * beta).logSoftmax(dim: -1)
                let flat = try lp.doubles(), v = pos.config.vocabSize
                return response.enumerated().map { k, y in Foundation.exp(flat[(prompt.count - 1 + k) * v + y]) }
            }
        }
    }

    func testTheContrastAgainstAFullForward() throws {
        let (pos, tok) = try tiny(seed: 1), (neg, _) = try tiny(seed: 2)
        let prompts = [tok.encode("<|im_start|>user\nhi<|im_end|>\n"), tok.encode("<|im_start|>user\nsum<|im_end|>\n")]
        let responses = [tok.encode("no idea"), tok.encode("7 + 1 is 9, wrong")]
        for beta in [1.0, 0.5, 0] {
            let s = try CriticalTokens.scores(positive: pos, negative: neg, prompts: prompts + [prompts[0]], responses: responses + [responses[1]], beta: beta, batch: 2)
            XCTAssertEqual(s.map(\.count), [7, 17, 17])
            for (i, (p, r)) in zip(prompts + [prompts[0]], responses + [responses[1]]).enumerated() {
                let expected = try byHand(pos, neg, prompt: p, response: r, beta: beta)
                for (a, b) in zip(s[i], expected) { XCTAssertEqual(a, b, accuracy: 1e-5, "β \(beta) row \(i)") }
            }
        }
        // One model twice: (1 + β)z − βz = z, so s_t is the model's own probability of the token.
        let same = try CriticalTokens.scores(positive: pos, negative: pos, prompts: [prompts[1]], responses: [responses[1]], beta: 3)
        let own = try ResponseForward.rowLogprobs(pos, prompts: [prompts[1]], responses: [responses[1]], microBatch: 0).logprobs[0].map { Foundation.exp($0) }
        for (a, b) in zip(same[0], own) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testTheWeightsAndTheRefusals() throws {
        let (pos, tok) = try tiny(seed: 1), (neg, _) = try tiny(seed: 2)
        let chat = ChatTemplate.chatML(defaultSystem: nil)
        let pairs = [PreferencePair(prompt: "What is 1 + 1?", chosen: "2", rejected: "3, I think")]
        let w = try CriticalTokens.weighted(pairs, positive: pos, negative: neg, tokenizer: tok, chat: chat)
        let weights = try XCTUnwrap(w[0].weights)
        XCTAssertEqual(weights.chosen, [1])
        let s = try CriticalTokens.scores(positive: pos, negative: neg, prompts: [tok.encode(chat.render([ChatMessage(role: "user", content: "What is 1 + 1?")], addGenerationPrompt: true))],
                                          responses: [tok.encode("3, I think")])
        XCTAssertEqual(weights.rejected, s[0].map { 1 - $0 })
        XCTAssertTrue(weights.rejected.allSatisfy { $0 > 0 && $0 < 1 })
        // The weighted pair is what weighted DPO reads.
        try TaskData.checkWeights(w[0], PreferenceLoss.Config(name: .weightedDPO), tok)
        XCTAssertThrowsError(try CriticalTokens.weighted(w, positive: pos, negative: neg, tokenizer: tok, chat: chat)) {
            XCTAssertEqual("\($0)", "critical-tokens: pair 1 has 'chosen_weights' and 'rejected_weights' already; they are never replaced")
        }
        let other = try CausalLM.random(config: ModelConfig(modelType: .llama, vocabSize: 300, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 1,
                                                           numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 16, maxPositionEmbeddings: 64, eosTokenId: [257]), seed: 3)
        XCTAssertThrowsError(try CriticalTokens.scores(positive: pos, negative: other, prompts: [[1]], responses: [[2]])) {
            XCTAssertTrue("\($0)".contains("the positive model has 270 tokens and the negative one 300"), "\($0)")
        }
    }
}
