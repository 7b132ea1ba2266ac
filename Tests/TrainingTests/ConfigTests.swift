import Foundation
import XCTest
@testable import Credit
@testable import Training
import Yams

final class ConfigTests: XCTestCase {
    func error(_ yaml: String, overrides: [String] = []) -> String {
        do {
            _ = try RunConfig.load(yaml: yaml, file: "run.yaml", overrides: overrides)
            return "no error"
        } catch { return "\(error)" }
    }

    /// Every preset's commented template reads back as the preset, and the resolved YAML round-trips.
    func testPresetTemplatesRoundTrip() throws {
        for p in Preset.allCases {
            let text = try p.template()
            XCTAssertTrue(text.contains("# Credit assignment"), p.rawValue)
            // The keys the preset leaves unset are named too, as comments.
            for key in ["  # system: ~", "  # init_from: ~", "  # max_new_tokens: ~", "  # max_rollout_tokens: ~", p == .sft ? "  # max_length: ~" : "  # aggregation: ~"] {
                XCTAssertTrue(text.contains(key), "\(p.rawValue): \(key)")
            }
            XCTAssertEqual(text.contains("# critic: ~"), p.config.critic == nil, p.rawValue)
            XCTAssertEqual(text.contains("# agent: ~"), p.config.agent == nil, p.rawValue)
            XCTAssertEqual(text.contains("# laser: ~"), p.config.laser == nil, p.rawValue)
            XCTAssertEqual(try RunConfig.load(yaml: text), p.config, p.rawValue)
            XCTAssertEqual(try RunConfig.load(yaml: try p.config.yaml()), p.config, p.rawValue)
        }
    }

    /// A template edited to another credit method: the old method's params are left out with a
    /// note; the new method's are kept; a param no method has is still an error.
    func testATemplateEditedToAnotherMethodLoads() throws {
        let template = try Preset.default.template()
        XCTAssertTrue(template.contains("td_weight"))
        let edited = template.replacingOccurrences(of: "method: tempo", with: "method: grpo")
        XCTAssertEqual(try RunConfig.load(yaml: edited).credit, CreditConfig(method: .grpo))
        var node = try XCTUnwrap(try Yams.compose(yaml: "credit: {method: grpo, params: {td_weight: 0.5, std_normalize: false}}"))
        XCTAssertEqual(RunConfig.staleCreditParams(&node),
                       ["'credit.params.td_weight' is a param of tempo, not of method 'grpo': left out (a template's params follow the method it was written for)"])
        XCTAssertEqual(try Yams.serialize(node: node), "credit:\n  method: grpo\n  params:\n    std_normalize: false\n")
        XCTAssertEqual(error("credit: {method: grpo, params: {std_normalise: false}}"),
                       "run.yaml: unknown param 'std_normalise' for method 'grpo' (known: eps, scale, std, std_normalize)")
    }

    func testFileMergesOverDefaultsAndOverrides() throws {
        let c = try RunConfig.load(yaml: """
            optim:
              lr: 0.0005
            train: {steps: 7}
            credit:
              method: hapo
            reward:
              terms:
                - {type: correct, extractor: boxed}
                - {type: overlong, max_length: 20, cache: 5, weight: 0.5}
            """, overrides: ["train.samples_per_prompt=3", "model.lora=null", "rollout.stop=[\"\\n\\n\", END]"])
        XCTAssertEqual(c.optim.lr, 0.0005)
        XCTAssertEqual(c.optim.maxGradNorm, 1)              // untouched keys keep their defaults
        XCTAssertEqual(c.train.steps, 7)
        XCTAssertEqual(c.train.samplesPerPrompt, 3)
        XCTAssertNil(c.model.lora)
        XCTAssertEqual(c.rollout.stop, ["\n\n", "END"])
        XCTAssertEqual(c.credit, CreditConfig(method: .hapo))  // another method: its own defaults, not GRPO's
        XCTAssertEqual(c.reward?.terms.map(\.type), ["correct", "overlong"])
        XCTAssertEqual(c.reward?.terms[1].weight, 0.5)
        // The resolved config, written and read again, is the same config (reward terms included).
        XCTAssertEqual(try RunConfig.load(yaml: try c.yaml()), c)
        // An objective key without a name changes the base's objective (preset sft's), one naming
        // another loss replaces it.
        let sft = try RunConfig.load(yaml: "", base: Preset.sft.config, overrides: ["objective.packing=true", "objective.sstoken.keep=0.5"])
        XCTAssertEqual(sft.sft?.packing, true)
        XCTAssertEqual(sft.sft?.sstoken?.keep, 0.5)
        XCTAssertEqual(sft.sft?.completionOnlyLoss, true)
        let dpo = try RunConfig.load(yaml: "", base: Preset.sft.config, overrides: ["objective.name=dpo", "data.task=examples/rto/arithmetic-pairs.jsonl"])
        XCTAssertNil(dpo.sft)
        XCTAssertEqual(dpo.preference?.name, .dpo)
        XCTAssertThrowsError(try RunConfig.load(yaml: "", base: Preset.sft.config, overrides: ["objective.clip=0.2"])) {
            XCTAssertTrue("\($0)".contains("objective: unknown key 'clip'"), "\($0)")
        }
        // Overriding a nested parameter of the default method keeps the others.
        let g = try RunConfig.load(yaml: "credit: {params: {std_normalize: false}}")
        guard case .grpo(let p) = g.credit else { return XCTFail("\(g.credit)") }
        XCTAssertFalse(p.stdNormalize)
    }

    func testErrorsNameTheFileLineAndKey() {
        XCTAssertEqual(error("optim:\n  lr: 0.1\n  lrr: 3\n"),
                       "run.yaml:3: unknown key 'optim.lrr' (known in 'optim': lr, schedule, weight_decay, max_grad_norm, warmup_steps, min_lr_ratio)")
        XCTAssertTrue(error("model: {}\nmodle: {}\n").hasPrefix("run.yaml:2: unknown key 'modle' (known in the top level: model, data,"), error("modle: {}"))
        XCTAssertEqual(error("train:\n  steps: many\n"), "run.yaml:2: 'train.steps': expected an integer")
        XCTAssertEqual(error("optim:\n  schedule: cosin\n"), "run.yaml:2: 'optim.schedule' is 'cosin'; expected one of constant, linear, cosine")
        XCTAssertEqual(error("rollout: {temperature_schedule: {name: adaptve}}"),
                       "run.yaml:1: 'rollout.temperature_schedule.name' is 'adaptve'; expected one of constant, adaptive")
        XCTAssertEqual(error("rollout:\n  temperature: [1]\n"), "run.yaml:2: 'rollout.temperature': expected one value, not a list or mapping")
        XCTAssertEqual(error("data:\n  difficulty: 9\n"), "run.yaml: config: 'data.difficulty' must be 1…5, got 9")
        XCTAssertEqual(error("credit: {method: nope}"), "run.yaml: unknown method 'nope' (known: grpo, rloo, reinforce_pp, gae, tempo, spo_chain, spo_tree, pure, gigpo, hapo, tw_grpo, d3s, hicra, istar)")
        XCTAssertEqual(error("reward: {terms: [{type: correct, extractr: boxed}]}"),
                       "run.yaml: reward term 0 ('correct'): unknown key 'extractr' (known: correct, extractor, incorrect, match, tolerance, weight)")
        XCTAssertTrue(error("objective: {clip_eps: 0.2}").hasPrefix("run.yaml: objective: unknown key 'clip_eps'"), error("objective: {clip_eps: 0.2}"))
        XCTAssertEqual(error("- a\n- b\n"), "run.yaml: the config must be a mapping of sections (model, data, …)")
        XCTAssertTrue(error("train: [\n").hasPrefix("run.yaml: "), error("train: [\n"))
        XCTAssertEqual(error("", overrides: ["lr=3"]), "--set 'lr=3': the key must be section.key (e.g. optim.lr=1e-4)")
        XCTAssertEqual(error("", overrides: ["optim.lr"]), "--set 'optim.lr': expected section.key=value")
        XCTAssertEqual(error("", overrides: ["optim.lr=fast"]), "run.yaml: 'optim.lr': expected a number")
        XCTAssertEqual(error("eval: {temperature: 0, samples: 4}"), "run.yaml: config: 'eval.samples' must be 1 with greedy decoding ('eval.temperature' 0)")
    }
}
