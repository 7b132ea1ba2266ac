import Foundation
import XCTest
@testable import Rewards

/// CRew's confidence reward: where each extractor finds the answer, which tokens overlap it, and
/// their mean probability.
final class ConfidenceRewardTests: XCTestCase {
    func testAnswerSpansInBytes() {
        XCTAssertEqual(AnswerExtractor.lastNumber.byteSpan("The answer is 42."), 14..<16)
        XCTAssertEqual(AnswerExtractor.lastNumber.byteSpan("so −3/4 then 1,000"), 15..<20)
        XCTAssertEqual(AnswerExtractor.lastNumber.byteSpan("−7"), 0..<4)   // U+2212 is 3 bytes
        XCTAssertNil(AnswerExtractor.lastNumber.byteSpan("none"))
        XCTAssertEqual(AnswerExtractor.boxed.byteSpan("x \\boxed{ a{b} } y"), 10..<14)
        XCTAssertEqual(AnswerExtractor.answerTag.byteSpan("<answer>\n5\n</answer>"), 9..<10)
        XCTAssertNil(AnswerExtractor.boxed.byteSpan("\\boxed{open"))
        // The extracted answers are unchanged.
        XCTAssertEqual(Answers.lastNumber("so −3/4 then 1,000"), "1000")
        XCTAssertEqual(Answers.lastNumber("−7"), "-7")
        XCTAssertEqual(Answers.lastBoxed("x \\boxed{ a{b} } y"), "a{b}")
    }

    /// "so 12" as tokens "so", " 1", "2", EOS (ends 2, 4, 5, 15): the answer "12" (bytes 3..<5)
    /// overlaps " 1" and "2", so c = (0.5 + 0.25)/2; the EOS past the text never counts.
    func testTheMeanProbabilityOfTheAnswersTokens() {
        let r = ConfidenceReward()
        let input = RewardInput(response: "so 12", tokenLogprobs: [log(0.9), log(0.5), log(0.25), log(0.99)], tokenEnds: [2, 4, 5, 15])
        XCTAssertEqual(r.answerTokens(input), [1, 2])
        XCTAssertEqual(r.score(input).value, 0.375, accuracy: 1e-12)
        // One answer token: its probability.
        XCTAssertEqual(r.score(RewardInput(response: "7", tokenLogprobs: [log(0.3)], tokenEnds: [1])).value, 0.3, accuracy: 1e-12)
        // An empty answer, no answer, or no tokens: 0.
        XCTAssertEqual(ConfidenceReward(extractor: .boxed).score(RewardInput(response: "\\boxed{}", tokenLogprobs: [log(0.9)], tokenEnds: [8])).value, 0)
        XCTAssertEqual(r.score(RewardInput(response: "so", tokenLogprobs: [log(0.9)], tokenEnds: [2])).value, 0)
        XCTAssertEqual(r.score(RewardInput(response: "so 12")).value, 0)
        // A boxed answer: only the tokens inside the braces.
        let boxed = ConfidenceReward(extractor: .boxed)
        let b = RewardInput(response: "\\boxed{8}", tokenLogprobs: [log(0.1), log(0.6), log(0.2)], tokenEnds: [7, 8, 9])
        XCTAssertEqual(boxed.answerTokens(b), [1])
        XCTAssertEqual(boxed.score(b).value, 0.6, accuracy: 1e-12)
    }

    func testTheTermFromConfig() throws {
        let c = try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [{"type": "correct"}, {"type": "confidence", "weight": 0.5, "extractor": "boxed"}]}"#.utf8))
        let input = RewardInput(response: "\\boxed{3}", answer: "3", tokenLogprobs: [log(0.5), log(0.8), log(0.5)], tokenEnds: [7, 8, 9])
        let s = c.reward.score(input)
        XCTAssertEqual(s.value, 1 + 0.5 * 0.8, accuracy: 1e-12)
        XCTAssertEqual(s.components["confidence"] ?? 0, 0.8, accuracy: 1e-12)
        XCTAssertThrowsError(try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [{"type": "confidence", "budget": 3}]}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("('confidence'): unknown key 'budget' (known: extractor, weight)"), "\($0)")
        }
    }
}
