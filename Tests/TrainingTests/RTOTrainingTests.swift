import Foundation
import Models
import XCTest
@testable import Credit
@testable import Torch
@testable import Training

/// RTO in training: the token rewards are the DPO model's logprobs minus the reference's for the
/// very tokens sampled, recorded in samples.jsonl; the model is required exactly when credit reads them.
final class RTOTrainingTests: FolderTestCase {
    /// From YAML, as a user writes it.
    func rtoConfig() throws -> RunConfig {
        try RunConfig.load(yaml: """
            model: {token_reward_model: \(try InputTests.tokenRewardModel())}
            credit: {method: gae, params: {kl_coef: 0.01, token_rewards: true}}
            critic: {lora: {r: 4}}
            train: {steps: 2}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
    }

    func testTokenRewardsAreTheDPOModelsLogRatioToTheReference() throws {
        let dir = root.appendingPathComponent("rto")
        try TrainingRun.start(config: try rtoConfig(), dir: dir, console: .quiet).run()
        let lines = JSONLines.read(dir.appendingPathComponent("samples.jsonl"))
        let record = try XCTUnwrap(lines.first { ($0["step"] as? Int) == 2 })
        let tokens = try XCTUnwrap(record["tokens"] as? [Int]), prompt = try XCTUnwrap(record["prompt"] as? String)
        let recorded = try XCTUnwrap((record["credit"] as? [String: Any])?["token_rewards"] as? [Double])
        // The reference is the tiny model itself (LoRA off); the "DPO model" is the saved seed-7 one.
        let base = try Pretrained.tinyRandom(), dpo = try Pretrained.load(try InputTests.tokenRewardModel())
        let ids = base.tokenizer.encode(prompt)
        func lp(_ m: CausalLM) throws -> [Double] {
            try ResponseForward.rowLogprobs(m, prompts: [ids], responses: [tokens], microBatch: 0).logprobs[0]
        }
        let expected = zip(try lp(dpo.model), try lp(base.model)).map { $0 - $1 }
        XCTAssertEqual(recorded.count, tokens.count)
        for (a, b) in zip(recorded, expected) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertGreaterThan(expected.map(abs).max() ?? 0, 0.01, "the two models must differ for the test to mean anything")
        let metrics = JSONLines.read(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertNotNil(metrics.last?["token_reward_mean"])
        // The written config reads back with the model and the params.
        let text = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertEqual(try RunConfig.load(yaml: text), try rtoConfig())
    }

    func testTheTokenRewardModelIsRequiredExactlyWhenCreditReadsIt() throws {
        var without = try rtoConfig()
        without.model.tokenRewardModel = nil
        XCTAssertThrowsError(try without.validate()) { XCTAssertTrue("\($0)".contains("needs per-token rewards from a preference-trained model ('token_rewards'), from a preference-trained model: set 'model.token_reward_model'"), "\($0)") }
        var unread = Preset.tiny.config
        unread.model.tokenRewardModel = try InputTests.tokenRewardModel()
        XCTAssertThrowsError(try unread.validate()) { XCTAssertTrue("\($0)".contains("'model.token_reward_model' gives RTO's per-token rewards, which credit.method tempo does not read"), "\($0)") }
        var other = try rtoConfig()
        let foreign = root.appendingPathComponent("foreign")
        try Pretrained.tinyRandom(seed: 3).save(to: foreign)
        // The same size, one token spelled otherwise.
        let file = foreign.appendingPathComponent("tokenizer.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        XCTAssertTrue(text.contains("<unused269>"))
        try Data(text.replacingOccurrences(of: "<unused269>", with: "<other>").utf8).write(to: file)
        other.model.tokenRewardModel = foreign.path
        XCTAssertThrowsError(try TrainingRun.start(config: other, dir: root.appendingPathComponent("r"), console: .quiet)) {
            XCTAssertTrue("\($0)".contains("its tokenizer (270 tokens) is not the policy's"), "\($0)")
        }
        other.model.tokenRewardModel = root.appendingPathComponent("missing").path
        XCTAssertThrowsError(try TrainingRun.start(config: other, dir: root.appendingPathComponent("r"), console: .quiet)) {
            XCTAssertTrue("\($0)".contains("model.token_reward_model \(root.appendingPathComponent("missing").path)"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("r").path))
    }
}
