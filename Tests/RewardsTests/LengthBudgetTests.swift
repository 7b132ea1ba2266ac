import Foundation
import XCTest
@testable import Rewards

/// "Train Long, Think Short"'s budget schedule and length reward against hand-computed values.
final class LengthBudgetTests: XCTestCase {
    func testTheBudgetDecaysInStagesAsThePapersMainRun() throws {
        let r = try LengthBudgetReward()
        // 256 → 179.2 → 125.44 → 87.808 → 61.47, floored: the paper's 256, 179, 125, 87.
        XCTAssertEqual([0, 149, 150, 299, 300, 450, 599, 600].map { r.budget(at: $0) }, [256, 256, 179, 179, 125, 87, 87, 61])
        let tiny = try LengthBudgetReward(budget: 3, decay: 0.5, every: 1)
        XCTAssertEqual((0..<4).map { tiny.budget(at: $0) }, [3, 1, 1, 1], "never below one token")
    }

    func testTriangularAndBandShapes() throws {
        let tri = try LengthBudgetReward(budget: 100, every: 1000, peak: 2)
        XCTAssertEqual([0, 50, 100, 150, 200, 250].map { tri.reward(length: $0, budget: 100) }, [0, 1, 2, 1, 0, 0])
        let band = try LengthBudgetReward(budget: 100, shape: .band)
        XCTAssertEqual([0, 50, 100, 150, 200, 201].map { band.reward(length: $0, budget: 100) }, [1, 1, 1, 0.5, 0, 0])
        // The step an input was sampled at picks the budget: 40 tokens is the peak only once B(t) = 40.
        let r = try LengthBudgetReward(budget: 80, decay: 0.5, every: 10)
        XCTAssertEqual(r.score(RewardInput(response: "x", responseTokens: 40, step: 0)), RewardScore(value: 0.5, components: ["budget": 80]))
        XCTAssertEqual(r.score(RewardInput(response: "x", responseTokens: 40, step: 10)), RewardScore(value: 1, components: ["budget": 40]))
        XCTAssertEqual(r.score(RewardInput(response: "x", responseTokens: 40, step: 20)), RewardScore(value: 0, components: ["budget": 20]))
    }

    func testTheTermFromConfigAndItsErrors() throws {
        func config(_ json: String) throws -> RewardConfig { try JSONDecoder().decode(RewardConfig.self, from: Data(json.utf8)) }
        let c = try config(#"{"terms": [{"type": "correct"}, {"type": "length_budget", "weight": 0.6, "budget": 10, "every": 5, "decay": 0.5}]}"#)
        let s = try c.reward.checkedScore(RewardInput(response: "5", answer: "5", responseTokens: 5, step: 5))
        XCTAssertEqual(s.value, 1 + 0.6 * 1, accuracy: 1e-12)
        XCTAssertEqual(s.components["budget"], 5)
        XCTAssertEqual(s.components["length_budget"], 1)
        func refusal(_ json: String) -> String {
            do { _ = try config(json); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(refusal(#"{"terms": [{"type": "length_budget", "decay": 1.5}]}"#),
                       "reward term 0 ('length_budget'): 'decay' must be in (0, 1], got 1.5")
        XCTAssertEqual(refusal(#"{"terms": [{"type": "length_budget", "budget": 0}]}"#),
                       "reward term 0 ('length_budget'): 'budget' must be at least 1, got 0")
        XCTAssertEqual(refusal(#"{"terms": [{"type": "length_budget", "shape": "flat"}]}"#),
                       "reward term 0 ('length_budget'): shape 'flat' is not triangular or band")
        XCTAssertTrue(refusal(#"{"terms": [{"type": "length_budget", "target": 3}]}"#)
            .hasPrefix("reward term 0 ('length_budget'): unknown key 'target' (known: budget, decay, every, peak, shape, weight)"))
    }
}
