import Foundation
import XCTest
@testable import Credit
import Models
@testable import Objectives
@testable import Rollout
@testable import Torch
@testable import Training

/// Every method and loss option either trains with real inputs from its providers or is refused
/// at validation, naming the input; the walk covers the whole registry, so a new method or input
/// kind cannot go without one of the two.
final class InputTests: XCTestCase {
    /// Credit inputs that no provider supplies in training yet.
    static let unsupplied: Set<CreditInput> = [.states, .planning, .ratios]

    func testEveryCreditMethodGetsRealInputsOrIsRefused() throws {
        var configs = CreditMethod.allCases.map { CreditConfig(method: $0) }
        configs += CreditMethod.allCases.filter { $0 != .d3s }.map { .d3s(.init(base: CreditConfig(method: $0), sampleKeep: 0.5, tokenKeep: 0.5)) }
        configs += [.reinforcePP(.init(klCoef: 0.1)), .pure(.init(klCoef: 0.1)), .hicra(.init(grams: [[101]])), .gae(.init(klCoef: 0.1)),
                    .hapo(.init(redistribution: true)), .gae(rto)]
        let tokenRewardModel = try Self.tokenRewardModel()
        for credit in configs {
            // Values come from a learned critic, and RTO's token rewards from a second model, which the config must ask for.
            let cfg = tinyTrainerConfig {
                $0.credit = credit
                if credit.inputs.contains(.values) { $0.critic = .init() }
                if credit.inputs.contains(.tokenRewards) { $0.model.tokenRewardModel = tokenRewardModel }
            }
            let name = "\(credit.method.rawValue) \(credit.inputs.sorted())"
            let missing = credit.inputs.intersection(Self.unsupplied).sorted()
            if let first = missing.first {
                XCTAssertThrowsError(try cfg.validate(), name) {
                    XCTAssertTrue("\($0)".hasPrefix("config: credit.method ") && "\($0)".contains(" needs \(first.summary), "), "\($0)")
                }
                continue
            }
            XCTAssertNoThrow(try cfg.validate(), name)
            let (t, _) = try trainTiny(cfg)
            let inputs = try XCTUnwrap(t.lastInputs, name)
            for input in CreditInput.allCases { try check(input, declared: credit.inputs.contains(input), inputs, name) }
        }
    }

    /// GAE with RTO's token rewards.
    var rto: GAE.Params { var p = GAE.Params(klCoef: 0.01); p.tokenRewards = true; return p }

    /// A tiny model with other weights than the policy's, saved once: RTO's "DPO model" in tests.
    static func tokenRewardModel() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tw-token-reward-model")
        if !FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) {
            try Pretrained.tinyRandom(seed: 7).save(to: url)
        }
        return url.path
    }

    /// A declared input is real (present, and not a constant stand-in); an undeclared one is not
    /// computed at all.
    func check(_ input: CreditInput, declared: Bool, _ inputs: StepInputs, _ name: String) throws {
        let trajectories = inputs.groups.flatMap(\.trajectories)
        func present<T>(_ field: (Trajectory) -> T?) -> [T] { trajectories.compactMap(field) }
        let note = "\(name): \(input.rawValue)"
        switch input {
        case .logprobs, .entropies:
            // The rollouts always give them.
            let values = input == .logprobs ? present(\.logprobs).flatMap { $0 } : present(\.entropies).flatMap { $0 }
            XCTAssertEqual(values.count, trajectories.reduce(0) { $0 + $1.count }, note)
            XCTAssertGreaterThan(Set(values).count, 1, note)
        case .kl:
            guard declared else { return XCTAssertTrue(present(\.kl).isEmpty, note) }
            let kl = present(\.kl).flatMap { $0 }
            XCTAssertEqual(kl.count, trajectories.reduce(0) { $0 + $1.count }, note)
            // At step 2 the adapters have moved, so the policy is not the reference.
            XCTAssertGreaterThan(kl.map(abs).max() ?? 0, 1e-4, note)
        case .stepRewards:
            guard declared else { return XCTAssertTrue(present(\.stepRewards).isEmpty, note) }
            XCTAssertEqual(present(\.stepRewards).count, trajectories.count, note)
            XCTAssertFalse(present(\.stepRewards).flatMap { $0 }.isEmpty, note)
        case .segmentValues:
            guard declared else { return XCTAssertTrue(present(\.segmentValues).isEmpty, note) }
            let cuts = present(\.segments), values = present(\.segmentValues)
            XCTAssertEqual(values.count, trajectories.count, note)
            XCTAssertEqual(cuts.map(\.count), values.map(\.count), note)
            XCTAssertGreaterThan(Set(values.flatMap { $0 }).count, 1, note)
        case .tree:
            guard declared else { return XCTAssertTrue(present(\.treePath).isEmpty, note) }
            let paths = present(\.treePath)
            XCTAssertEqual(paths.count, trajectories.count, note)
            XCTAssertEqual(paths.map(\.count), present(\.segments).map(\.count), note)
            // Leaves share nodes: some node lies on more than one path of a group.
            for g in inputs.groups {
                let nodes = g.trajectories.flatMap { $0.treePath! }
                XCTAssertLessThan(Set(nodes).count, nodes.count, note)
            }
        case .positionScores:
            let scores = inputs.groups.compactMap(\.positionScores)
            guard declared else { return XCTAssertTrue(scores.isEmpty, note) }
            XCTAssertEqual(scores.count, inputs.groups.count, note)
            for (g, k) in zip(inputs.groups, scores) {
                XCTAssertGreaterThanOrEqual(k.count, g.trajectories.map(\.count).max() ?? 0, note)
                XCTAssertGreaterThan(Set(k).count, 1, note)
            }
        case .values:
            guard declared else { return XCTAssertTrue(present(\.values).isEmpty, note) }
            let values = present(\.values)
            XCTAssertEqual(values.map(\.count), trajectories.map(\.count), note)
            // The head starts at 0; after one critic update the values differ by token.
            XCTAssertGreaterThan(Set(values.flatMap { $0 }).count, 1, note)
            XCTAssertEqual(inputs.values?.flatMap { $0 }, values.flatMap { $0 }, note)
        case .tokenRewards:
            guard declared else { return XCTAssertTrue(present(\.tokenRewards).isEmpty, note) }
            let rewards = present(\.tokenRewards)
            XCTAssertEqual(rewards.map(\.count), trajectories.map(\.count), note)
            XCTAssertGreaterThan(Set(rewards.flatMap { $0 }).count, 1, note)
            XCTAssertNotNil(inputs.metrics["token_reward_mean"], note)
        case .turnRewards:
            // Only agent runs with an 'istar' section supply them (AgentTrainingTests trains one).
            XCTAssertFalse(declared, "\(note): one-turn rollouts have no turns to reward")
            XCTAssertTrue(present(\.turnRewards).isEmpty, note)
        case .states, .planning, .ratios:
            XCTAssertFalse(declared, "\(note) has no provider but was not refused")
            XCTAssertTrue(present(\.states).isEmpty && present(\.planning).isEmpty && present(\.ratios).isEmpty, note)
        }
    }

    func testEveryObjectiveOptionGetsRealInputsOrIsRefused() throws {
        var variants = PolicyLossConfig.Ratio.allCases.map { r -> PolicyLossConfig in
            var o = PolicyLossConfig()
            o.ratio = r
            if r.isSequenceLevel { o.aggregation = .seqMeanTokenMean }
            if r == .hybrid { o.hybrid = .init(mixing: .entropy) }
            return o
        }
        variants += PolicyLossConfig.Mismatch.Mode.allCases.map { m in var o = PolicyLossConfig(); o.mismatch.mode = m; return o }
        var kl = PolicyLossConfig(), entropy = PolicyLossConfig(), adaptive = PolicyLossConfig(), redistribution = PolicyLossConfig()
        kl.klCoef = 0.1
        entropy.entropyCoef = 0.01
        adaptive.adaptiveClip = .init()
        redistribution.adaptiveAdvantage = .init()
        variants += [kl, entropy, adaptive, redistribution]
        for objective in variants {
            let cfg = tinyTrainerConfig { $0.objective = objective }
            let name = "\(objective.requirements.map(\.option))"
            if let refused = objective.requirements.first(where: { $0.input == .rolloutLogprobs || $0.input == .turns }) {
                XCTAssertThrowsError(try cfg.validate(), name) {
                    XCTAssertTrue("\($0)".hasPrefix("config: \(refused.option) needs \(refused.input.summary), "), "\($0)")
                }
                continue
            }
            let (t, metrics) = try trainTiny(cfg)
            let inputs = try XCTUnwrap(t.lastInputs)
            for input in PolicyInput.allCases {
                let declared = objective.inputs.contains(input)
                switch input {
                case .refLogprobs:
                    guard declared else { XCTAssertNil(inputs.refLogprobs, name); continue }
                    let ref = try XCTUnwrap(inputs.refLogprobs, name).flatMap { $0 }
                    let old = inputs.rows.flatMap { inputs.rollouts.rolled[$0].completion.logprobs }
                    XCTAssertEqual(ref.count, old.count, name)
                    XCTAssertGreaterThan(zip(ref, old).map { abs($0 - $1) }.max() ?? 0, 1e-4, name)
                    XCTAssertNotNil(metrics["kl"], name)
                case .entropies:
                    // The training forward's entropies reach the loss, which reports their mean.
                    XCTAssertGreaterThan(metrics["entropy"] ?? 0, 0.1, name)
                case .rolloutLogprobs, .turns:
                    XCTAssertFalse(declared, "\(name): \(input) has no provider but was not refused")
                }
            }
        }
    }

    /// Process rewards are refused when the reward gives none.
    func testStepRewardsNeedARewardWithSteps() throws {
        let (m, tok) = try tiny()
        XCTAssertThrowsError(try Trainer(model: m, tokenizer: tok, reward: PromptReward(), config: tinyTrainerConfig { $0.credit = .pure(.init()) })) {
            XCTAssertEqual("\($0)", "config: credit.method pure needs process rewards ('step_rewards'), but the reward 'prompt' gives none: "
                + "use a reward with steps (such as the countdown task's) or another method")
        }
    }

    /// HAPO's adaptive temperature: the first step samples at the plain temperature, the next at
    /// T·(1 + τ·clamp(ĥ(H_t), −1, 1)) with ĥ from the first step's entropy statistics.
    func testAdaptiveTemperatureFollowsThePreviousStepsEntropies() throws {
        let cfg = tinyTrainerConfig { $0.rollout.temperatureSchedule = .init(name: .adaptive, tau: 0.5) }
        let (t, _) = try trainTiny(cfg, steps: 1)
        let first = t.lastInputs!.rollouts.rolled.map(\.completion)
        XCTAssertTrue(first.allSatisfy { $0.temperatures.allSatisfy { $0 == 1 } })
        let stats = try XCTUnwrap(t.entropyStatistics)
        XCTAssertEqual(stats, HAPO.EntropyStatistics(entropies: first.flatMap(\.entropies), pivotQuantile: 0.8, signFix: true))
        _ = try t.step([TaskSample(prompt: "abc", answer: "1"), TaskSample(prompt: "hello there", answer: "2")])
        let second = t.lastInputs!.rollouts.rolled.map(\.completion)
        for c in second {
            for (temp, h) in zip(c.temperatures, c.entropies) {
                XCTAssertEqual(temp, 1 + 0.5 * min(1, max(-1, stats.normalized(h))), accuracy: 1e-9)
            }
        }
        XCTAssertGreaterThan(Set(second.flatMap(\.temperatures)).count, 2)
        XCTAssertThrowsError(try tinyTrainerConfig { $0.rollout.temperatureSchedule.tau = 2 }.validate()) {
            XCTAssertEqual("\($0)", "rollout: 'temperature_schedule.tau' must be in [0, 1), got 2.0")
        }
    }

    /// Options that cannot change a run are named at the start.
    func testOptionsWithoutEffectAreWarned() throws {
        var c = RunConfig()
        XCTAssertEqual(c.warnings, [])
        c.train.spoContinuations = 4
        c.credit = .hapo(.init())
        c.train.tree.branching = 3
        XCTAssertEqual(c.warnings, [
            "train.tree is set but credit.method hapo samples no trees; it has no effect",
            "train.spo_continuations is set but credit.method hapo reads no Monte-Carlo values; it has no effect",
        ])
    }
}
