import Foundation
import Models
import Objectives
import Torch
import XCTest
@testable import Training

/// ssToken: the selection by hand, the trainer's loss against each example computed alone (with
/// and without packing), a YAML run, and the configs it refuses.
final class SSTokenTests: XCTestCase {
    /// γ ½, ρ ½ over REL (1, 3, 2, 0) and attention (0.1, 0, 0.5, 0.2): minmax(REL) = (⅓, 1, ⅔, 0),
    /// scores (0.217, 0.5, 0.583, 0.1), so tokens 1 and 2; by attention alone, tokens 2 and 3.
    func testTheSelectionByHand() {
        var s = SSTokenConfig()
        s.keep = 0.5
        XCTAssertEqual(s.selected(rel: [1, 3, 2, 0], attention: [0.1, 0, 0.5, 0.2]), [1, 2])
        XCTAssertEqual(s.selected(rel: [1, 3, 2, 0], attention: [0.1, 0, 0.5, 0.2], attentionOnly: true), [2, 3])
        // Equal scores keep the earlier token; an example of one target keeps it.
        XCTAssertEqual(s.selected(rel: [0, 0, 0, 0], attention: [0.3, 0.3, 0.3, 0.3]), [0, 1])
        XCTAssertEqual(s.selected(rel: [2], attention: [0]), [0])
        // ⌈ρ·n⌉ in floating point, as the official math.ceil(resp_len * data_prop): 0.6·4 = 2.4 → 3, 0.6·5 = 3.
        XCTAssertEqual(SSTokenConfig().count(of: 4), 3)
        XCTAssertEqual(SSTokenConfig().count(of: 5), 3)
        s.keep = 1
        XCTAssertEqual(s.selected(rel: [5, 1, 3], attention: [0, 0, 0]), [0, 1, 2], "ρ = 1 learns every target: plain SFT")
    }

    func pairFile(_ root: URL) throws -> URL {
        let url = root.appendingPathComponent("sft.jsonl")
        let lines = (0..<8).map { i in #"{"prompt": "Count to \#(i % 4 + 2), please", "completion": "\#((0...(i % 4 + 2)).map(String.init).joined(separator: ", "))."}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    func trainer(_ root: URL, packing: Bool) throws -> (SFTTrainer, [SFTExample]) {
        let p = try Pretrained.tinyRandom(seed: 4)
        var config = SFTLoss.Config(maxLength: 256, packing: packing)
        var s = SSTokenConfig()
        s.keep = 0.5
        s.attentionOnlyExamples = 3
        config.sstoken = s
        var data = RunConfig.DataSection()
        data.task = try pairFile(root).path
        data.evalSize = 0
        let d = try TaskData.loadSFT(data, config: config, tokenizer: p.tokenizer, chat: try p.chatTemplate(), context: 512)
        return (try SFTTrainer(model: p.model, config: config, lora: LoRA.Config(), lr: 1e-2, weightDecay: 0, maxGradNorm: 1e9, microBatch: 0, seed: 1), d.trainSFT)
    }

    /// After one step (so the adapters differ from the base and REL is not 0), a step's loss is,
    /// from each example alone: the NLL summed over its kept targets (examples 0–2 of the run by
    /// attention alone) over Σ⌈ρ·n⌉; packing (which reorders the examples into rows) gives the same.
    func testTheLossCountsOnlyEachExamplesKeptTargets() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-sstoken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        var losses = [Double]()
        for packing in [false, true] {
            let (t, examples) = try trainer(root, packing: packing)
            _ = try t.step(examples, first: 0)
            var nll = 0.0, kept = 0, count = 0
            try withTorchErrors {
                try withNoGrad {
                    for (i, x) in examples.enumerated() {
                        let ids = Tensor(x.tokens.map(Int64.init), shape: [1, x.tokens.count]), v = t.model.config.vocabSize
                        let tap = CausalLM.AttentionTap()
                        let now = try t.model.logits(hidden: try t.model.hidden(ids, segments: [[x.tokens.count]], tap: tap)).to(dtype: .float32).logSoftmax(dim: -1).doubles()
                        let base = try t.forward.withReference { try $0(ids).to(dtype: .float32).logSoftmax(dim: -1).doubles() }
                        let a = try XCTUnwrap(tap.probabilities).doubles(), n = x.tokens.count
                        let positions = (1..<n).filter { x.targets[$0] }, prompt = positions[0]
                        let rel = positions.map { p in -base[(p - 1) * v + x.tokens[p]] + now[(p - 1) * v + x.tokens[p]] }
                        let attention = positions.map { p in (0..<prompt).reduce(0) { $0 + a[p * n + $1] } }
                        let keep = t.config.sstoken!.selected(rel: rel, attention: attention, attentionOnly: i < 3)
                        nll -= keep.reduce(0) { $0 + now[(positions[$1] - 1) * v + x.tokens[positions[$1]]] }
                        kept += keep.count
                        count += t.config.sstoken!.count(of: positions.count)
                    }
                }
            }
            let m = try t.step(examples, first: 0)
            XCTAssertEqual(m["tokens"], Double(kept))
            XCTAssertEqual(kept, count)
            XCTAssertEqual(m["loss"]!, nll / Double(count), accuracy: 1e-5, "packing \(packing)")
            XCTAssertEqual(m["sstoken_kept_fraction"]!, Double(kept) / Double(examples.reduce(0) { $0 + $1.targetCount }), accuracy: 1e-12)
            XCTAssertNotEqual(m["sstoken_rel_mean"] ?? 0, 0)
            losses.append(m["loss"]!)
        }
        XCTAssertEqual(losses[0], losses[1], accuracy: 1e-5)
    }

    /// Two steps from YAML: each learns about half of its targets, and the written config reads back.
    func testARunFromYAML() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-sstoken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let c = try RunConfig.load(yaml: """
            data: {task: \(try pairFile(root).path), eval_size: 2}
            objective: {name: sft, sstoken: {keep: 0.5, attention_only_examples: 4}}
            train: {steps: 2, prompts_per_step: 4}
            output: {checkpoint_every: 0, report: false, save_model: false}
            """, base: Preset.tiny.config)
        let dir = root.appendingPathComponent("run")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let metrics = replayableMetrics(dir)
        XCTAssertEqual(metrics.count, 2)
        for m in metrics { XCTAssertEqual(m["sstoken_kept_fraction"] ?? 0, 0.5, accuracy: 0.15, "\(m)") }
        let written = try RunConfig.load(yaml: try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.sft, c.sft)
    }

    func testBadConfigsAreRefusedByName() throws {
        let cases = [
            "objective: {name: sft, sstoken: {keep: 0}}": "objective.sstoken: 'keep' (ρ) must be in (0, 1], got 0.0",
            "objective: {name: sft, sstoken: {gamma: 2}}": "objective.sstoken: 'gamma' must be in [0, 1], got 2.0",
            "objective: {name: sft, sstoken: {attention_only_examples: -1}}": "objective.sstoken: 'attention_only_examples' must be >= 0, got -1",
            "objective: {name: sft, sstoken: {kepp: 0.5}}": "objective.sstoken: unknown key 'kepp'",
            "objective: {name: sft, loss_type: dft, sstoken: {}}": "'sstoken' selects tokens for the negative log-likelihood (loss_type nll), as its authors train; loss_type is 'dft'",
            "objective: {name: aligndistil, dpo_model: a, reverse_model: b, sstoken: {}}": "objective 'aligndistil': 'sstoken' selects the tokens of objective 'sft''s likelihood loss",
        ]
        for (yaml, message) in cases {
            XCTAssertThrowsError(try RunConfig.load(yaml: yaml, base: Preset.tiny.config), yaml) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        var config = SFTLoss.Config()
        var s = SSTokenConfig()
        s.layer = 2
        config.sstoken = s
        XCTAssertThrowsError(try SFTTrainer(model: try Pretrained.tinyRandom().model, config: config, lora: LoRA.Config(), lr: 1e-3, weightDecay: 0,
                                            maxGradNorm: 1, microBatch: 0, seed: 1)) {
            XCTAssertTrue("\($0)".contains("'layer' 2 is not one of the model's 2 layers (0…1, or −2…−1 from the last)"), "\($0)")
        }
    }
}
