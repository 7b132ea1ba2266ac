import Foundation
import Models
import Rewards
import Rollout
import XCTest
@testable import Training

/// CRew's confidence term in training: each rollout's reward reads the sampler's logprobs of the
/// tokens of its own answer.
final class CRewTests: XCTestCase {
    let reward = #"{"terms": [{"type": "correct"}, {"type": "confidence", "weight": 0.5}]}"#

    func testAStepRewardsTheAnswerTokensMeanProbability() throws {
        let config = try JSONDecoder().decode(RewardConfig.self, from: Data(reward.utf8))
        let cfg = tinyTrainerConfig { $0.train.samplesPerPrompt = 8; $0.rollout.seed = 11 }
        let (m, tok) = try tiny()
        let t = try Trainer(model: m, tokenizer: tok, reward: config.reward, config: cfg)
        _ = try t.step((0..<4).map { TaskSample(prompt: "q\($0)", answer: "1") })
        var scored = 0
        for r in t.lastRecords {
            // By hand from the record: the tokens whose bytes overlap the last number.
            var end = 0, start = 0, probs = [Double]()
            let span = AnswerExtractor.lastNumber.byteSpan(r.response)
            for (k, id) in r.tokens.enumerated() {
                start = end
                end += tok.bytes(of: id).count
                if let span, start < span.upperBound, end > span.lowerBound { probs.append(exp(r.logprobs[k])) }
            }
            let expected = probs.isEmpty ? 0 : probs.reduce(0, +) / Double(probs.count)
            XCTAssertEqual(r.components["confidence"] ?? -1, expected, accuracy: 1e-9, r.response)
            XCTAssertEqual(r.reward, (r.components["correct"] ?? 0) + 0.5 * expected, accuracy: 1e-9)
            if expected > 0 { scored += 1 }
        }
        XCTAssertGreaterThan(scored, 0, "some responses hold a number")
    }

    func testARunFromYAMLAndTheRefusal() throws {
        let c = try RunConfig.load(yaml: """
            train: {steps: 2, samples_per_prompt: 8}
            reward: \(reward)
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-crew-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.count, 2)
        XCTAssertTrue(metrics.contains { ($0["reward_confidence"] as? NSNumber)?.doubleValue ?? 0 > 0 }, "\(metrics)")
        XCTAssertThrowsError(try RunConfig.load(yaml: "reward: \(reward)\ncredit: {method: spo_chain}")) {
            XCTAssertTrue("\($0)".contains("reward term 'confidence' reads the sampled tokens' logprobs"), "\($0)")
        }
        XCTAssertThrowsError(try RunConfig.load(yaml: "reward: \(reward)\nrollout: {engine: remote, remote: {url: 'http://127.0.0.1:1'}}")) {
            XCTAssertTrue("\($0)".contains("reward term 'confidence' finds the answer's tokens by their bytes in the response text"), "\($0)")
        }
    }
}

/// CRew-DPO's pairs: which responses pair, in which order, and what the command writes.
final class CRewPairsTests: XCTestCase {
    /// Right 0, 2 and wrong 1, 3 with confidences 0.9, 0.2, 0.5, 0.6: gaps (0,1) 0.7, (0,3) 0.3,
    /// (2,1) 0.3, (2,3) −0.1; the top 2 keep the order right × wrong on the tie.
    func testTheLargestGapsAreKept() {
        var o = CRewPairs.Options()
        o.topK = 2
        let correct = [true, false, true, false], c = [0.9, 0.2, 0.5, 0.6]
        XCTAssertEqual(CRewPairs.select(correct: correct, confidence: c, o, seed: 0).map { [$0.chosen, $0.rejected] }, [[0, 1], [0, 3]])
        o.topK = 10
        XCTAssertEqual(CRewPairs.select(correct: correct, confidence: c, o, seed: 0).map { [$0.chosen, $0.rejected] }, [[0, 1], [0, 3], [2, 1], [2, 3]])
        // |gap|: (2,3)'s 0.1 still ranks last; with a larger negative gap it moves up.
        o.gap = .absolute
        XCTAssertEqual(CRewPairs.select(correct: correct, confidence: [0.1, 0.2, 0.5, 0.95], o, seed: 0).map { [$0.chosen, $0.rejected] },
                       [[0, 3], [2, 3], [2, 1], [0, 1]])
        // No pair without both kinds; the random baseline draws one right and one wrong.
        XCTAssertTrue(CRewPairs.select(correct: [true, true], confidence: [0.1, 0.2], o, seed: 0).isEmpty)
        o.selection = .random
        for seed in 0..<20 as Range<UInt64> {
            let p = CRewPairs.select(correct: correct, confidence: c, o, seed: seed)
            XCTAssertEqual(p.count, 1)
            XCTAssertTrue(correct[p[0].chosen] && !correct[p[0].rejected])
        }
        XCTAssertGreaterThan(Set((0..<20 as Range<UInt64>).map { CRewPairs.select(correct: correct, confidence: c, o, seed: $0)[0].chosen }).count, 1)
    }

    /// On the tiny model with a reward that passes a quarter of the responses: every pair's chosen
    /// response is right and its rejected one wrong, at most K per prompt, ranked by the gap.
    func testPairsFromTheModelsSamples() throws {
        let (m, tok) = try tiny()
        var o = CRewPairs.Options()
        (o.samples, o.topK, o.batchPrompts) = (8, 3, 2)
        o.sampling = SamplingConfig(temperature: 1, maxNewTokens: 6, seed: 2)
        let prompts = (0..<5).map { (raw: "question \($0)", rendered: TaskSample(prompt: "<|im_start|>user\nquestion \($0)<|im_end|>\n")) }
        let (pairs, mixed, _) = try CRewPairs.build(model: m, tokenizer: tok, prompts: prompts, reward: QuarterReward(), o)
        XCTAssertGreaterThan(mixed, 0)
        XCTAssertLessThanOrEqual(pairs.count, 3 * mixed)
        let reward = QuarterReward()
        for (p, group) in Dictionary(grouping: pairs, by: \.prompt) {
            XCTAssertTrue(p.hasPrefix("question "))
            XCTAssertLessThanOrEqual(group.count, 3)
            let gaps = group.map { $0.chosenConfidence - $0.rejectedConfidence }
            XCTAssertEqual(gaps, gaps.sorted(by: >))
            for pair in group {
                XCTAssertEqual(reward.score(RewardInput(response: pair.chosen)).components["correct"], 1)
                XCTAssertEqual(reward.score(RewardInput(response: pair.rejected)).components["correct"], 0)
            }
        }
        // Without a 'correct' term there is nothing to pair by.
        XCTAssertThrowsError(try CRewPairs.build(model: m, tokenizer: tok, prompts: prompts, reward: LetterReward(), o)) {
            XCTAssertTrue("\($0)".contains("by the reward's 'correct' term, and this reward has none"), "\($0)")
        }
    }
}
