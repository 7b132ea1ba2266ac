import Foundation
import XCTest
@testable import Models
@testable import Objectives
@testable import Torch
@testable import Training

/// T-REG in training: the revision prompts are rendered from each pair's prompt, the token rewards
/// come from the reference under them, and a run trains on them from YAML.
final class TREGTrainingTests: FolderTestCase {
    func pairs() throws -> URL {
        let url = root.appendingPathComponent("pairs.jsonl")
        let lines = (0..<6).map { #"{"prompt": "What is \#($0) + 1?", "chosen": "\#($0 + 1)", "rejected": "\#($0 + 3) maybe"}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    func config(_ data: URL) -> RunConfig {
        var c = Preset.tiny.config
        (c.train.steps, c.output.saveModel, c.data.task, c.data.evalSize) = (2, false, data.path, 2)
        c.preference = .init(name: .treg, beta: 0.1, alpha: 0.5)
        return c
    }

    func testTheTokenRewardsComeFromTheReferenceUnderTheRevisionPrompts() throws {
        let run = try TrainingRun.start(config: config(try pairs()), dir: root.appendingPathComponent("run"), console: .quiet)
        let trainer = try XCTUnwrap(run.preferenceTrainer), pairs = run.data.trainPairs
        let p = try XCTUnwrap(pairs.first), revision = try XCTUnwrap(p.revision)
        XCTAssertTrue(revision.better.contains("+ 1?\n\n" + PreferenceLoss.Config.betterInstruction), revision.better)
        XCTAssertTrue(revision.worse.contains("+ 1?\n\n" + PreferenceLoss.Config.worseInstruction), revision.worse)
        XCTAssertTrue(revision.better.hasPrefix("<|im_start|>user\n"), revision.better)
        let (chosen, rejected) = try withTorchErrors { try withNoGrad { try trainer.sides(pairs) } }
        let tok = trainer.tokenizer, end = tok.eosIds.first.map { [$0] } ?? []
        for (side, key) in [(chosen, \PreferencePair.chosen), (rejected, \PreferencePair.rejected)] {
            let got = try withTorchErrors { try XCTUnwrap(side.revisionRewards).doubles() }, width = try XCTUnwrap(side.revisionRewards).size(1)
            for (n, pair) in pairs.enumerated() {
                let y = tok.encode(pair[keyPath: key]) + end, r = try XCTUnwrap(pair.revision)
                // By hand: the reference's logprob of each token after either prompt.
                let lp = try trainer.forward.withReference { m in
                    try ResponseForward.rowLogprobs(m, prompts: [tok.encode(r.better), tok.encode(r.worse)], responses: [y, y], microBatch: 0).logprobs
                }
                let expected = zip(lp[0], lp[1]).map { 1 / (1 + exp($1 - $0)) - 0.5 }
                for (k, e) in expected.enumerated() { XCTAssertEqual(got[n * width + k], e, accuracy: 1e-5, "pair \(n) token \(k)") }
            }
            XCTAssertTrue(got.contains { abs($0) > 1e-4 }, "the two prompts score the tokens differently")
        }
        try run.run()
        let metrics = JSONLines.read(root.appendingPathComponent("run/metrics.jsonl"))
        XCTAssertEqual(metrics.count, 2)
        XCTAssertNotNil(metrics[0]["revision_reward_chosen_mean"], "\(metrics[0])")
    }

    func testARunFromYAML() throws {
        let data = try pairs()
        let c = try RunConfig.load(yaml: """
            model: {path: tiny-random}
            data: {task: \(data.path), eval_size: 2}
            objective: {name: treg, beta: 0.1, alpha: 0.25, better: "Answer better.", worse: "Answer worse."}
            train: {steps: 2, prompts_per_step: 2}
            eval: {before: false, after: false}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """)
        XCTAssertEqual(c.preference?.better, "Answer better.")
        let dir = root.appendingPathComponent("yaml")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        XCTAssertEqual(JSONLines.read(dir.appendingPathComponent("metrics.jsonl")).count, 2)
        let written = try RunConfig.load(yaml: try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.preference, c.preference)
    }
}
