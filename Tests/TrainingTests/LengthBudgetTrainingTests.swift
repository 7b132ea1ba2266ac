import Foundation
import XCTest
@testable import Rewards
@testable import Training

/// The length-budget curriculum in training: each step's rewards use the budget of the steps
/// trained before it.
final class LengthBudgetTrainingTests: XCTestCase {
    func testEachStepScoresAgainstItsOwnBudget() throws {
        let (m, tok) = try tiny()
        let reward = CompositeReward([(1, try LengthBudgetReward(budget: 8, decay: 0.5, every: 1))])
        let t = try Trainer(model: m, tokenizer: tok, reward: reward, config: tinyTrainerConfig())
        let samples = [TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")]
        var budgets = [Double]()
        for s in 0..<3 {
            let metrics = try t.step(samples, seed: UInt64(s))
            budgets.append(metrics["reward_budget"] ?? .nan)
            // Every response is at most 8 tokens (max_new_tokens), scored by the triangle at this step's budget.
            let b = Int(budgets.last!)
            for r in t.lastRecords {
                XCTAssertEqual(r.reward, try LengthBudgetReward(budget: 8).reward(length: r.tokens.count, budget: b), accuracy: 1e-12)
            }
        }
        XCTAssertEqual(budgets, [8, 4, 2])
    }
}
