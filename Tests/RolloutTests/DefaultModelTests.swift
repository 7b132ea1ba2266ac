import Foundation
import XCTest
@testable import Models
@testable import Rollout
@testable import Torch

final class DefaultModelRolloutTests: XCTestCase {
    /// With temperature 0 the batched sampler equals step-by-step greedy decoding without a cache,
    /// on the default model for 32 tokens.
    func testGreedySamplerEqualsUncachedGreedy() throws {
        let p: Pretrained
        do { p = try Pretrained.load("default") } catch let e as ModelError where e.message.contains("is not installed") {
            if ProcessInfo.processInfo.environment["TOKENWISE_REQUIRE_DEFAULT_MODEL"] != nil { throw e }
            throw XCTSkip("default model not installed")
        }
        let chat = try p.chatTemplate()
        let prompts = ["Name three colors.", "What is 2+2?"].map {
            p.tokenizer.encode(chat.render([ChatMessage(role: "user", content: $0)], addGenerationPrompt: true))
        }
        let out = try Sampler(model: p.model, tokenizer: p.tokenizer).sample(prompts: prompts, config: .init(temperature: 0, maxNewTokens: 32))
        for c in out {
            var seq = prompts[c.promptIndex]
            let v = p.model.config.vocabSize
            for _ in 0..<c.tokens.count {
                let logits = try withTorchErrors { try withNoGrad { try p.model(Tensor(seq.map(Int64.init), shape: [1, seq.count])).select(dim: 1, index: seq.count - 1).floats() } }
                XCTAssertEqual(logits.count, v)
                seq.append(logits.indices.max { logits[$0] < logits[$1] }!)
            }
            XCTAssertEqual(c.tokens, Array(seq.dropFirst(prompts[c.promptIndex].count)))
            XCTAssertTrue(c.finishReason == .eos || c.tokens.count == 32)
        }
    }
}
