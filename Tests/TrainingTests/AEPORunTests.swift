import Foundation
import Models
import Rewards
import Rollout
import XCTest
@testable import Training

/// AEPO inside a run: one step's rollouts shaped by hand, YAML runs with the state resumed, and
/// every refused config.
final class AEPORunTests: XCTestCase {
    /// Three rollouts of two prompts (window 2, median of 50th percentiles), worked by hand:
    /// percentiles 0.8, 0.3, 1 → θ 0.8; counts 1, 0, 1; prompt 0 (pass rate ½) medium with T =
    /// round(0.5) = 0 (half to even) and α 0.5 + 0.05·0.5; prompt 1 (0) hard with T 1, α 0.5.
    func testAStepsRolloutsAreShapedAsWorkedByHand() throws {
        let (_, tok) = try tiny()
        let w = try XCTUnwrap(tok.encode("w").first), a = try XCTUnwrap(tok.encode("a").first)
        var config = AEPOConfig()
        config.window = 2
        config.percentile = 50
        config.triggers = [AEPO.normalized(tok.decode([w]))]
        let shaping = AEPOShaping(config: config, tokenizer: tok)
        XCTAssertTrue(shaping.trigger(w))
        XCTAssertFalse(shaping.trigger(a))
        func rollouts() -> StepRollouts {
            var r = StepRollouts()
            let rows: [([Int], [Double], Bool, Int)] = [([w, a, a, a], [0.5, 1, 1, 0.2], true, 0), ([a, w, a, a, a], [2, 0.1, 0.3, 0.5, 0.1], false, 0),
                                                        ([w, w, w], [1, 1, 1], false, 1), ([w, a, a], [1, 1, 1], false, 2)]
            for (tokens, h, right, p) in rows {
                let c = Completion(promptIndex: p, sampleIndex: 0, tokens: tokens, samplingLogprobs: h.map { _ in -1 }, logprobs: h.map { _ in -1 },
                                   entropies: h, temperatures: h.map { _ in 1 }, finishReason: .length, text: "")
                r.rolled.append(Rolled(completion: c))
                r.scores.append(RewardScore(value: right ? 1 : 0, components: ["correct": right ? 1 : 0]))
            }
            r.rolloutsOf = [[0, 1], [2], [3]]
            r.kept = [0, 1]   // prompt 2 does not train (e.g. dropped by dynamic sampling): not shaped, not counted
            return r
        }
        var r = rollouts()
        let m = try shaping.shape(&r, dp: nil)
        assertNear(r.scores.map(\.value), [1, 0.5 * 0.525 * 0.8, 0.5 * 0.6, 0], accuracy: 1e-12)
        XCTAssertEqual(r.scores[1].components["aepo"] ?? 0, 0.21, accuracy: 1e-12)
        XCTAssertNil(r.scores[3].components["aepo"])
        XCTAssertEqual(m["aepo_threshold"], 0.8)
        XCTAssertEqual(m["aepo_medium_prompts"], 1)
        XCTAssertEqual(m["aepo_hard_prompts"], 1)
        XCTAssertEqual(m["aepo_easy_prompts"], 0)
        XCTAssertEqual(m["aepo_target_medium"], 0)
        XCTAssertEqual(m["aepo_target_hard"], 1)
        XCTAssertNil(m["aepo_target_easy"])
        XCTAssertEqual(m["aepo_alpha_medium"] ?? 0, 0.525, accuracy: 1e-12)
        XCTAssertEqual(m["aepo_triggers_mean"] ?? 0, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(shaping.state.threshold, 0.8)
        // The next step counts with θ 0.8 and moves it by 1% toward its own median (0.8 again).
        var again = rollouts()
        _ = try shaping.shape(&again, dp: nil)
        XCTAssertEqual(shaping.state.threshold ?? 0, 0.8, accuracy: 1e-12)
        XCTAssertEqual(shaping.state.alpha[.medium] ?? 0, 0.55, accuracy: 1e-12)
        // The released config's reading: every response easy, T 0, α 0.5.
        config.reading = .released
        var released = rollouts()
        _ = try AEPOShaping(config: config, tokenizer: tok).shape(&released, dp: nil)
        assertNear(released.scores.map(\.value), [1, 0.15, 0.15, 0], accuracy: 1e-12)
        // Rollouts without entropies (a remote engine) are refused by name.
        var bare = rollouts()
        bare.rolled[0].completion.entropies = []
        XCTAssertThrowsError(try shaping.shape(&bare, dp: nil)) {
            XCTAssertTrue("\($0)".contains("aepo counts each trigger's window entropy from the sampler's per-token entropies, and this step's rollouts carry none (0 for 4 tokens)"), "\($0)")
        }
    }

    /// Two steps from YAML on the tiny preset, checkpointed (the tiny model writes bytes, so the
    /// triggers are letters and digits); a resumed run restores θ and α, so its second step is the
    /// uninterrupted run's.
    func testARunFromYAMLResumesItsState() throws {
        let yaml = """
            train: {steps: 2}
            credit: {method: grpo}
            aepo: {window: 2, triggers: [a, e, i, o, u, "1", "2"]}
            eval: {before: false, after: false}
            output: {checkpoint_every: 1, report: false, save_model: false}
            """
        let c = try RunConfig.load(yaml: yaml, base: Preset.tiny.config)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tw-aepo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let whole = root.appendingPathComponent("whole"), cut = root.appendingPathComponent("cut")
        try TrainingRun.start(config: c, dir: whole, console: .quiet).run()
        let metrics = replayableMetrics(whole)
        XCTAssertEqual(metrics.count, 2)
        XCTAssertGreaterThan(metrics.map { $0["aepo_triggers_mean"] ?? 0 }.max() ?? 0, 0, "\(metrics)")
        for m in metrics {
            XCTAssertNotNil(m["aepo_threshold"], "\(m)")
            XCTAssertNotNil(m["reward_aepo"], "\(m)")
            XCTAssertEqual((m["aepo_easy_prompts"] ?? 0) + (m["aepo_medium_prompts"] ?? 0) + (m["aepo_hard_prompts"] ?? 0), m["groups_kept"])
        }
        let state = try String(contentsOf: whole.appendingPathComponent("checkpoints/step-1/trainer_state.json"), encoding: .utf8)
        XCTAssertTrue(state.contains("\"aepo\""), state)
        try TrainingRun.start(config: c, dir: cut, console: .quiet).runSteps(upTo: 1)
        try TrainingRun.resume(dir: cut, console: .quiet).run()
        XCTAssertEqual(replayableMetrics(cut), metrics)
        let written = try RunConfig.load(yaml: try String(contentsOf: whole.appendingPathComponent("config.yaml"), encoding: .utf8))
        XCTAssertEqual(written.aepo, c.aepo)
    }

    func testBadConfigsAreRefusedByName() throws {
        let cases: [(String, (inout AEPOConfig) -> Void)] = [
            ("'aepo.window' must be at least 1, got 0", { $0.window = 0 }),
            ("'aepo.percentile' must be in [0, 100], got 101.0", { $0.percentile = 101 }),
            ("'aepo.threshold_decay' must be in [0, 1), got 1.0", { $0.thresholdDecay = 1 }),
            ("'aepo.threshold' must be finite", { $0.threshold = .infinity }),
            ("'aepo.alpha_min' and 'aepo.alpha_max' must satisfy 0 <= min <= max, got 1.0 and 0.5", { $0.alphaMin = 1; $0.alphaMax = 0.5 }),
            ("'aepo.alpha' must be in [alpha_min, alpha_max] = [0.0, 2.0], got 3.0", { $0.alpha = 3 }),
            ("'aepo.alpha_lr' must be >= 0 and finite, got -1.0", { $0.alphaLr = -1 }),
            ("'aepo.triggers' is empty", { $0.triggers = [] }),
            ("'aepo.triggers' holds 'Wait', which no token matches: a token's text is trimmed and lower-cased before the look-up (write 'wait')", { $0.triggers = ["but", "Wait"] }),
            ("'aepo.reading' released gives every response alpha (0.5) with no update per bucket, so 'alpha_lr', 'alpha_min' and 'alpha_max' do not apply",
             { $0.reading = .released; $0.alphaLr = 0.1 }),
        ]
        for (message, edit) in cases {
            var a = AEPOConfig()
            edit(&a)
            var c = tinyTrainerConfig()
            c.aepo = a
            XCTAssertThrowsError(try c.validate(), message) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
        var remote = tinyTrainerConfig { $0.aepo = AEPOConfig() }
        remote.rollout.engine = .remote
        remote.rollout.remote = RemoteEngineConfig(url: "http://127.0.0.1:1")
        XCTAssertThrowsError(try remote.validate()) { XCTAssertTrue("\($0)".contains("'aepo' reads the sampler's per-token entropies, which a remote server does not report"), "\($0)") }
        XCTAssertThrowsError(try RunConfig.load(yaml: "aepo: {window: 2, windw: 3}")) { XCTAssertTrue("\($0)".contains("windw"), "\($0)") }
        XCTAssertThrowsError(try RunConfig.load(yaml: "aepo: {reading: paper}")) { XCTAssertTrue("\($0)".contains("paper"), "\($0)") }
        XCTAssertThrowsError(try RunConfig.load(yaml: "aepo: {}\nobjective: {name: dpo}", base: Preset.tiny.config)) {
            XCTAssertTrue("\($0)".contains("'aepo' shapes the reward of a sampled one-turn response from its tokens' entropies; it does not apply to objective"), "\($0)")
        }
        let (m, tok) = try tiny()
        XCTAssertThrowsError(try Trainer(model: m, tokenizer: tok, reward: LetterReward(), config: tinyTrainerConfig { $0.aepo = AEPOConfig() })) {
            XCTAssertTrue("\($0)".contains("aepo buckets each prompt by its pass rate and shapes right and wrong responses apart, from the reward's 'correct' term, and this reward has none"), "\($0)")
        }
    }
}
