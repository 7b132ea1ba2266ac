import Foundation
import Models
import Objectives
import Torch
import XCTest
@testable import Training

/// AlignDistil in the supervised trainer: the step's loss against a per-example computation,
/// packing and micro-batches leave it unchanged, a YAML run, a reverse-DPO pair file, and the
/// configs it refuses.
final class AlignDistilRunTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-aligndistil-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// Two tiny models with other weights than the student's: the "DPO" and "reverse-DPO" teachers.
    static func teachers() throws -> (dpo: String, reverse: String) {
        let reverse = FileManager.default.temporaryDirectory.appendingPathComponent("tw-reverse-dpo-model")
        if !FileManager.default.fileExists(atPath: reverse.appendingPathComponent("config.json").path) {
            try Pretrained.tinyRandom(seed: 8).save(to: reverse)
        }
        return (try InputTests.tokenRewardModel(), reverse.path)
    }

    func pairFile() throws -> URL {
        let url = root.appendingPathComponent("pairs.jsonl")
        let lines = (0..<10).map { i in #"{"prompt": "What is \#(i) + 1?", "chosen": "It is \#(i + 1).", "rejected": "\#(i)"}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    func distillConfig(_ edit: (inout AlignDistilLoss.Config) -> Void = { _ in }) throws -> SFTLoss.Config {
        let (d, r) = try Self.teachers()
        var c = AlignDistilLoss.Config(dpoModel: d, reverseModel: r)
        edit(&c)
        var s = SFTLoss.Config()
        s.distill = c
        return s
    }

    func trainer(_ config: SFTLoss.Config, microBatch: Int = 0) throws -> (SFTTrainer, [SFTExample]) {
        let p = try Pretrained.tinyRandom(seed: 4)
        var data = RunConfig.DataSection()
        data.task = try pairFile().path
        data.evalSize = 0
        let d = try TaskData.loadSFT(data, config: config, tokenizer: p.tokenizer, chat: try p.chatTemplate(), context: 512)
        let t = try SFTTrainer(model: p.model, config: config, lora: LoRA.Config(), lr: 1e-2, weightDecay: 0, maxGradNorm: 1e9, microBatch: microBatch, seed: 1)
        return (t, d.trainSFT)
    }

    /// Each example alone, its three models' full logits: the mean over its distilled positions of
    /// ℓ_t, then the mean over examples, is the step's loss. `released` reads the distributions at
    /// the chosen tokens' own positions (p), `targets` those that predict them (p − 1).
    func testTheStepLossIsTheMeanOverExamplesOfTheirTokenMeans() throws {
        for positions in AlignDistilLoss.Positions.allCases {
            let config = try distillConfig { $0.positions = positions }
            let (t, examples) = try trainer(config)
            XCTAssertEqual(examples.count, 10)
            let (dpo, reverse) = try XCTUnwrap(t.teachers)
            var expected = 0.0, weight = 0.0, tokens = 0.0
            try withTorchErrors {
                try withNoGrad {
                    for x in examples {
                        let ids = Tensor(x.tokens.map(Int64.init), shape: [1, x.tokens.count])
                        let at = Tensor((1..<x.tokens.count).filter { x.targets[$0] }.map { Int64($0 - (positions == .released ? 0 : 1)) })
                        func logits(_ m: CausalLM) throws -> Tensor { try m(ids).squeezed(dim: 0).indexSelect(dim: 0, index: at) }
                        let terms = AlignDistilLoss.terms(student: try logits(t.model), dpo: try logits(dpo), reverse: try logits(reverse), config.distill!)
                        expected += try terms.loss.mean().item() / Double(examples.count)
                        weight += try terms.weight.sum().item()
                        tokens += Double(at.size(0))
                    }
                }
            }
            let m = try t.step(examples)
            XCTAssertEqual(m["loss"]!, expected, accuracy: 1e-5 * Swift.max(1, expected), "\(positions)")
            XCTAssertEqual(m["distill_weight_mean"]!, weight / tokens, accuracy: 1e-5, "\(positions)")
            XCTAssertEqual(m["tokens"], tokens)
            XCTAssertNil(m["token_accuracy"])
            for k in ["distill_kl_dpo", "distill_kl_reverse", "distill_expected_reward", "grad_norm"] { XCTAssertTrue(m[k]?.isFinite ?? false, k) }
        }
        // Packing and micro-batches compute the same loss and gradient.
        let (plain, examples) = try trainer(try distillConfig())
        var packedConfig = try distillConfig()
        packedConfig.packing = true
        packedConfig.maxLength = 128
        let a = try plain.step(examples)
        for (other, _) in [try trainer(packedConfig), try trainer(try distillConfig(), microBatch: 3)] {
            let b = try other.step(examples)
            XCTAssertEqual(b["loss"]!, a["loss"]!, accuracy: 1e-5 * Swift.max(1, a["loss"]!))
            XCTAssertEqual(b["grad_norm"]!, a["grad_norm"]!, accuracy: 1e-4 * a["grad_norm"]!)
        }
    }

    /// Two steps from YAML on a pair file: the loss falls on the repeated batch, the held-out NLL of
    /// the chosen responses is reported, and the written config reads back.
    func testARunFromYAML() throws {
        let (d, r) = try Self.teachers()
        let c = try RunConfig.load(yaml: """
            data: {task: \(try pairFile().path), eval_size: 2}
            objective: {name: aligndistil, dpo_model: \(d), reverse_model: \(r), beta2: 15}
            train: {steps: 3, prompts_per_step: 8}
            optim: {lr: 0.05}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
        XCTAssertEqual(c.offline, "aligndistil")
        XCTAssertEqual(c.sft?.distill?.beta2, 15)
        let dir = root.appendingPathComponent("run")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let metrics = replayableMetrics(dir)
        XCTAssertEqual(metrics.count, 3)
        XCTAssertLessThan(metrics[2]["loss"]!, metrics[0]["loss"]!, "\(metrics.map { $0["loss"]! })")
        XCTAssertNotNil(metrics[0]["distill_kl_dpo"])
        let evals = JSONLines.read(dir.appendingPathComponent("eval.jsonl"))
        XCTAssertEqual(evals.count, 2)
        XCTAssertNotNil((evals[0]["loss"] as? [String: Any])?["mean"])
        let written = try RunConfig.load(yaml: try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.sft, c.sft)
    }

    /// A reverse-DPO run names each response's column as the other's: the pairs are swapped.
    func testChosenAndRejectedFieldsTradeColumns() throws {
        var data = RunConfig.DataSection()
        data.chosenField = "rejected"
        data.rejectedField = "chosen"
        let (e, _) = try Dataset.parse(Data(#"{"prompt": "p", "chosen": "good", "rejected": "bad"}"#.utf8), columns: data.columns)
        guard case .preference(let pair) = e else { return XCTFail("\(e)") }
        XCTAssertEqual([pair.chosen, pair.rejected], ["bad", "good"])
        var c = tinyTrainerConfig()
        c.data.chosenField = "better"
        XCTAssertThrowsError(try c.validate()) {
            XCTAssertTrue("\($0)".contains("'data.chosen_field' and 'data.rejected_field' name a pair file's columns, which RL does not read (the preference objectives do)"), "\($0)")
        }
    }

    func testBadConfigsAreRefusedByName() throws {
        let (d, r) = try Self.teachers()
        let cases = [
            "objective: {name: aligndistil, dpo_model: \(d)}": "objective 'aligndistil' distils toward a DPO model and a reverse-DPO model: set 'dpo_model' and 'reverse_model'",
            "objective: {name: aligndistil, dpo_model: \(d), reverse_model: \(r), loss_type: dft}": "objective 'aligndistil': 'loss_type' chooses the likelihood loss of objective 'sft'",
            "objective: {name: sft, beta2: 3}": "objective 'sft': 'beta2' is read by objective 'aligndistil', not 'sft'",
            "objective: {name: aligndistil, dpo_model: \(d), reverse_model: \(r), teacher: gkd}": "'teacher' is 'gkd'; expected one of 'aligndistil', 'theorem1', 'theorem1_contrast', 'theorem1_adaptive'",
            "objective: {name: aligndistil, dpo_model: \(d), reverse_model: \(r), beta: -1}": "objective 'aligndistil': 'beta' must be positive and finite, got -1.0",
        ]
        for (yaml, message) in cases {
            XCTAssertThrowsError(try RunConfig.load(yaml: yaml, base: Preset.tiny.config), yaml) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        let missing = root.appendingPathComponent("nowhere").path
        XCTAssertThrowsError(try trainer(try distillConfig { $0.reverseModel = missing })) {
            XCTAssertTrue("\($0)".contains("objective 'aligndistil': 'reverse_model' \(missing):"), "\($0)")
        }
    }
}
