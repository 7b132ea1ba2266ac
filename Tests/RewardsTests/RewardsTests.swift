import Foundation
import XCTest
@testable import Rewards

final class AnswerTests: XCTestCase {
    func testExtraction() {
        XCTAssertEqual(Answers.lastNumber("so 3 + 4 = 7."), "7")
        XCTAssertEqual(Answers.lastNumber("it costs -12.50 dollars"), "-12.50")
        XCTAssertEqual(Answers.lastNumber("total: 1,234,567 people"), "1234567")
        XCTAssertEqual(Answers.lastNumber("half is 1/2"), "1/2")
        XCTAssertEqual(Answers.lastNumber("minus \u{2212}5"), "-5")
        XCTAssertNil(Answers.lastNumber("no digits here"))
        XCTAssertEqual(Answers.lastBoxed("first \\boxed{1} then \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}")
        XCTAssertNil(Answers.lastBoxed("\\boxed{unclosed"))
        XCTAssertEqual(Answers.lastTagged("<answer>3</answer> text <answer> 42 </answer>", tag: "answer"), "42")
        XCTAssertNil(Answers.lastTagged("<answer>3", tag: "answer"))
        XCTAssertEqual(AnswerExtractor.answerTag.extract("x <answer>7</answer>"), "7")
    }

    func testEquivalence() {
        XCTAssertTrue(Answers.numericEqual("42", "42.0"))
        XCTAssertTrue(Answers.numericEqual("1,000", "1000"))
        XCTAssertTrue(Answers.numericEqual("3/4", "0.75"))
        XCTAssertTrue(Answers.numericEqual("$12", "12"))
        XCTAssertTrue(Answers.numericEqual("12.", "12"))
        XCTAssertFalse(Answers.numericEqual("41", "42"))
        XCTAssertFalse(Answers.numericEqual("forty-two", "42"))
        XCTAssertFalse(Answers.numericEqual("1/0", "1"))
        XCTAssertTrue(Answers.exactEqual("  Paris ", "paris"))
        XCTAssertTrue(Answers.exactEqual("New   York", "new york"))
        XCTAssertFalse(Answers.exactEqual("Paris.", "Paris"))
    }
}

final class RewardFunctionTests: XCTestCase {
    func testCorrectnessAndFormat() {
        let r = CorrectnessReward(extractor: .answerTag)
        XCTAssertEqual(r.score(RewardInput(response: "<answer>12</answer>", answer: "12")).value, 1)
        XCTAssertEqual(r.score(RewardInput(response: "<answer>13</answer>", answer: "12")).value, 0)
        XCTAssertEqual(r.score(RewardInput(response: "12", answer: "12")).value, 0)   // no tag
        XCTAssertEqual(CorrectnessReward(correct: 1, incorrect: -1).score(RewardInput(response: "it is 5", answer: "6")).value, -1)
        XCTAssertEqual(CorrectnessReward(match: .exact).score(RewardInput(response: "answer: Paris", answer: "paris")).value, 0)
        XCTAssertEqual(FormatReward().score(RewardInput(response: "<answer>x</answer>")).value, 1)
        XCTAssertEqual(FormatReward().score(RewardInput(response: "x")).value, 0)
    }

    func testLengthAndOverlongShaping() {
        XCTAssertEqual(LengthPenalty(budget: 10, perToken: 0.1).score(RewardInput(response: "", responseTokens: 15)).value, -0.5, accuracy: 1e-12)
        XCTAssertEqual(LengthPenalty(budget: 10, perToken: 0.1).score(RewardInput(response: "", responseTokens: 8)).value, 0)
        // ALGORITHMS.md §21.5: L_max = 20,480, L_cache = 4,096: 18,000 → (16,384 − 18,000)/4,096 = −0.39453.
        let o = OverlongShaping(maxLength: 20_480, cache: 4_096)
        XCTAssertEqual(o.score(RewardInput(response: "", responseTokens: 18_000)).value, -0.39453125, accuracy: 1e-9)
        XCTAssertEqual(o.score(RewardInput(response: "", responseTokens: 16_384)).value, 0)
        XCTAssertEqual(o.score(RewardInput(response: "", responseTokens: 20_481)).value, -1)
        XCTAssertEqual(o.score(RewardInput(response: "", responseTokens: 20_480)).value, -1, accuracy: 1e-12)
        XCTAssertEqual(OverlongShaping(maxLength: 100, cache: 20, factor: 0.5).score(RewardInput(response: "", responseTokens: 90)).value, -0.25)
    }

    func testComposition() {
        let c = CompositeReward([(1, CorrectnessReward(extractor: .answerTag)), (0.1, FormatReward()), (1, LengthPenalty(budget: 4, perToken: 0.05))])
        let s = c.score(RewardInput(response: "<answer>7</answer>", answer: "7", responseTokens: 6))
        XCTAssertEqual(s.value, 1 + 0.1 - 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.components, ["correct": 1, "format": 1, "length": -0.1])
    }

    func testCountdownStepRewards() {
        let problem = #"{"numbers": [3, 5, 7], "target": 22}"#
        // 3 + 5 = 8 (valid), 8 * 7 = 56 (valid but not the target)... then a wrong line.
        let good = "Let me try.\n3 + 5 = 8\n7 * 3 = 21\n"
        var s = CountdownReward().score(RewardInput(response: good, answer: problem))
        // 7 * 3: 3 was already used → invalid.
        XCTAssertEqual(s.steps.map(\.reward), [1, -1])
        XCTAssertEqual(s.value, 0)
        // Offsets point at the last byte of each equation line.
        XCTAssertEqual(s.steps.map(\.offset), [20, 31])   // "3 + 5 = 8" ends at byte 20, "7 * 3 = 21" at 31
        let solved = "5 * 3 = 15\n15 + 7 = 22"
        s = CountdownReward().score(RewardInput(response: solved, answer: problem))
        XCTAssertEqual(s.steps.map(\.reward), [1, 1])
        XCTAssertEqual(s.value, 1)
        XCTAssertEqual(s.components["valid_steps"], 2)
        XCTAssertEqual(CountdownReward().score(RewardInput(response: "5 × 3 = 15\n15 − 7 = 8", answer: #"{"numbers": [3, 5, 7], "target": 8}"#)).value, 1)
        XCTAssertEqual(CountdownReward().score(RewardInput(response: "3 + 5 = 9", answer: problem)).steps.map(\.reward), [-1])
        XCTAssertEqual(CountdownReward().score(RewardInput(response: "1 + 1 = 2", answer: "not json")).value, 0)
    }

    /// A user-written reward plugs in like the built-in ones.
    func testUserRewardFunctions() {
        struct Politeness: RewardFunction {
            var name: String { "polite" }
            func score(_ input: RewardInput) -> RewardScore { RewardScore(value: input.response.contains("please") ? 1 : 0) }
        }
        let c = CompositeReward([(0.5, Politeness()), (1, FormatReward())])
        XCTAssertEqual(c.score(RewardInput(response: "please <answer>1</answer>")).value, 1.5)
    }
}

final class RewardConfigTests: XCTestCase {
    func decode(_ json: String) throws -> RewardConfig { try JSONDecoder().decode(RewardConfig.self, from: Data(json.utf8)) }
    func error(_ json: String) -> String { do { _ = try decode(json); return "no error" } catch { return "\(error)" } }

    func testBuildsTheComposedReward() throws {
        let cfg = try decode(#"{"terms": [{"type": "correct", "extractor": "answer_tag", "correct": 1, "incorrect": -0.5}, {"type": "format", "weight": 0.2}, {"type": "overlong", "max_length": 64, "cache": 16}]}"#)
        XCTAssertEqual(cfg.terms.map(\.type), ["correct", "format", "overlong"])
        let s = cfg.reward.score(RewardInput(response: "no tag", answer: "3", responseTokens: 56))
        XCTAssertEqual(s.value, -0.5 + 0 + (48.0 - 56) / 16, accuracy: 1e-12)
    }

    func testBadConfigsNameTheTermAndKey() {
        XCTAssertEqual(error(#"{"terms": []}"#), "reward: 'terms' is empty")
        XCTAssertEqual(error(#"{"terms": [{"weight": 1}]}"#), "reward term 0: missing 'type'")
        XCTAssertEqual(error(#"{"terms": [{"type": "bleu"}]}"#), "reward term 0: unknown type 'bleu' (known: command, confidence, correct, countdown, format, http, length, length_budget, overlong)")
        XCTAssertEqual(error(#"{"terms": [{"type": "format"}, {"type": "correct", "extrator": "boxed"}]}"#),
                       "reward term 1 ('correct'): unknown key 'extrator' (known: correct, extractor, incorrect, match, tolerance, weight)")
        XCTAssertEqual(error(#"{"terms": [{"type": "correct", "extractor": "last_line"}]}"#),
                       "reward term 0 ('correct'): extractor 'last_line' is not one of last_number, boxed, answer_tag")
        XCTAssertEqual(error(#"{"terms": [{"type": "overlong", "max_length": 64}]}"#), "reward term 0 ('overlong'): needs 'max_length' and 'cache'")
        XCTAssertEqual(error(#"{"terms": [{"type": "length", "budget": "ten"}]}"#), "reward term 0 ('length'): 'budget' has the wrong type")
        XCTAssertEqual(error(#"{"terms": [{"type": "overlong", "max_length": 8, "cache": 16}]}"#), "reward term 0 ('overlong'): 'cache' must be in 1…max_length")
    }
}
