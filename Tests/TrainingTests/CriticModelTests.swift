import Foundation
import XCTest
@testable import Models
@testable import Torch
@testable import Training

/// A critic with a model of its own: a copy of the policy's starting weights (when the policy is
/// fully fine-tuned, or the critic is), or a model from a path with the policy's tokenizer.
final class CriticModelTests: XCTestCase {
    func ppo(_ edit: (inout RunConfig) -> Void) -> RunConfig {
        tinyTrainerConfig { c in
            c.credit = .gae(.init())
            var critic = RunConfig.CriticSection()
            critic.lora = .init(rank: 4, alpha: 8)
            critic.lr = 1e-2
            c.critic = critic
            edit(&c)
        }
    }

    func floats(_ m: CausalLM, _ name: String) throws -> [Float] { try withTorchErrors { try m.weights[name]!.detached().clone().floats() } }

    /// A fully fine-tuned policy gets a critic on a copy of its starting weights: the policy's updates
    /// do not reach the critic's base, and the critic's adapters are on its own model only.
    func testFullFineTuningPolicyGetsACopy() throws {
        let (t, metrics) = try trainTiny(ppo { $0.model.lora = nil })
        let critic = try XCTUnwrap(t.critic)
        XCTAssertFalse(critic.shared)
        XCTAssertFalse(critic.model === t.model)
        XCTAssertNil(t.model.lora)
        XCTAssertNotNil(critic.model.lora)
        let (start, _) = try tiny()
        let name = "model.layers.0.self_attn.q_proj.weight"
        XCTAssertEqual(try floats(critic.model, name), try floats(start, name), "the critic's base is the policy's start, frozen")
        XCTAssertNotEqual(try floats(t.model, name), try floats(start, name), "the policy trained every weight")
        XCTAssertNotNil(metrics["critic/vf_loss"])
    }

    /// `critic.lora: null` trains every weight of the critic's own copy and none of the policy's;
    /// its checkpoint holds every weight and restores exactly.
    func testFullCriticTrainsEveryWeightAndRoundTrips() throws {
        let (t, _) = try trainTiny(ppo { $0.critic!.lora = nil })
        let critic = try XCTUnwrap(t.critic)
        XCTAssertNil(critic.lora)
        XCTAssertEqual(critic.parameters.count, critic.model.parameters.count + 2)
        let (start, _) = try tiny()
        let name = "model.layers.1.mlp.down_proj.weight"
        XCTAssertNotEqual(try floats(critic.model, name), try floats(start, name), "the critic's weights trained")
        XCTAssertNil(critic.model.lora)
        t.model.lora = nil   // the policy's base, under its adapters, is untouched
        XCTAssertEqual(try floats(t.model, name), try floats(start, name))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-critic-full-\(UUID().uuidString)")
        let again = dir.appendingPathComponent("again")
        try FileManager.default.createDirectory(at: again, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try critic.save(to: dir)
        let file = try Safetensors.File(url: dir.appendingPathComponent(Critic.file))
        XCTAssertNotNil(file.entries[name])
        XCTAssertNotNil(file.entries["v_head.weight"])
        let (other, _) = try tiny(seed: 7)
        let fresh = try Critic(model: other, shared: false, config: critic.config, lr: 1e-2, seed: 7)
        fresh.basePath = critic.basePath
        try fresh.restore(from: dir)
        try fresh.save(to: again)
        for f in [Critic.file, Critic.optimizerFile] {
            XCTAssertEqual(try Data(contentsOf: again.appendingPathComponent(f)), try Data(contentsOf: dir.appendingPathComponent(f)), f)
        }
    }

    /// `critic.model` loads another model; one whose tokenizer differs from the policy's is refused.
    func testCriticModelFromAPath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-critic-model-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Pretrained.tinyRandom(seed: 5)
        try source.save(to: dir.appendingPathComponent("same"))
        let (t, _) = try trainTiny(ppo { $0.critic!.model = dir.appendingPathComponent("same").path })
        let critic = try XCTUnwrap(t.critic)
        XCTAssertFalse(critic.shared)
        let name = "model.layers.0.mlp.up_proj.weight"
        XCTAssertEqual(try floats(critic.model, name), try floats(source.model, name))

        var tokens = source.tokenizer.tokens
        tokens[tokens.count - 1] = "<other>"
        let tok = try Tokenizer(tokens: tokens, merges: [], added: source.tokenizer.addedTokens, special: source.tokenizer.specialIds,
                                pre: .gpt2, bosId: nil, eosIds: [257])
        try Pretrained(model: source.model, tokenizer: tok, chatTemplateText: source.chatTemplateText, source: "x").save(to: dir.appendingPathComponent("other"))
        let (m, policyTok) = try tiny()
        XCTAssertThrowsError(try Trainer(model: m, tokenizer: policyTok, reward: LetterReward(),
                                         config: ppo { $0.critic!.model = dir.appendingPathComponent("other").path })) {
            XCTAssertTrue("\($0)".contains("its tokenizer differs from the policy's"), "\($0)")
        }
    }

    /// The head starts at zero, or normal with `head_std` (seeded, so two runs agree).
    func testHeadInitialisation() throws {
        func head(_ std: Double) throws -> [Float] {
            let (m, tok) = try tiny()
            let t = try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: ppo { $0.critic!.headStd = std })
            return try withTorchErrors { try t.critic!.head.floats() }
        }
        XCTAssertEqual(try head(0), Array(repeating: 0, count: 64))
        let w = try head(0.1)
        let sd = (w.map { Double($0 * $0) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(sd, 0.1, accuracy: 0.04)
        XCTAssertEqual(try head(0.1), w)
        XCTAssertThrowsError(try ppo { $0.critic!.headStd = 11 }.validate()) { XCTAssertTrue("\($0)".contains("'critic.head_std' must be in [0, 10]"), "\($0)") }
    }
}
