import Foundation
import Models
import Rewards
import Rollout
import XCTest
@testable import Training

/// CRew-DPO's pairs from the default model's own answers to held-in arithmetic prompts.
final class DefaultModelCRewTests: XCTestCase {
    func testPairsOnTheDefaultModel() throws {
        let p = try defaultModel()
        var data = RunConfig.DataSection()
        data.trainSize = 6
        let set = try TaskData.load(data, reward: nil, chat: try p.chatTemplate())
        let prompts = try CRewPairs.prompts(set)
        XCTAssertTrue(prompts[0].raw.hasPrefix("What is "), prompts[0].raw)
        XCTAssertTrue(prompts[0].rendered.prompt.contains("<|im_start|>user\n\(prompts[0].raw)<|im_end|>"), prompts[0].rendered.prompt)
        var o = CRewPairs.Options()
        (o.samples, o.topK) = (8, 2)
        o.sampling = SamplingConfig(temperature: 1, maxNewTokens: 16, seed: 3)
        let (pairs, mixed, traces) = try CRewPairs.build(model: p.model, tokenizer: p.tokenizer, prompts: prompts, reward: set.reward, o)
        // The traces are every distinct response, right and wrong, that the pairs were drawn from.
        XCTAssertLessThanOrEqual(traces.count, 6 * 8)
        for pair in pairs {
            XCTAssertTrue(traces.contains(.init(prompt: pair.prompt, text: pair.chosen, right: true)))
            XCTAssertTrue(traces.contains(.init(prompt: pair.prompt, text: pair.rejected, right: false)))
        }
        XCTAssertGreaterThan(mixed, 0, "the model answers some sums right and some wrong")
        let correct = CorrectnessReward()
        for pair in pairs {
            let answer = try XCTUnwrap(set.train.first { $0.question == pair.prompt }?.answer)
            XCTAssertTrue(correct.isCorrect(RewardInput(response: pair.chosen, answer: answer)), pair.chosen)
            XCTAssertFalse(correct.isCorrect(RewardInput(response: pair.rejected, answer: answer)), pair.rejected)
            XCTAssertGreaterThan(pair.chosenConfidence, 0)
            XCTAssertLessThanOrEqual(pair.chosenConfidence, 1)
        }
    }
}
