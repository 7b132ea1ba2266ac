import Foundation
import XCTest
@testable import Credit
@testable import Environments
@testable import Models
@testable import Rollout
@testable import Torch
@testable import Training

/// FrozenLake for a random model: any action text is a move, picked by the sum of its bytes, so
/// episodes wander into other states (a random model never writes the word "down").
final class AnyTextLake: Environment {
    let lake: FrozenLake
    init(_ config: FrozenLake.Config) throws { lake = try FrozenLake(config) }
    var instructions: String { "Reach G." }
    var maxTurns: Int { lake.maxTurns }
    func reset(seed: UInt64) throws -> Observation { try lake.reset(seed: seed) }
    func step(_ action: String) throws -> StepOutcome {
        try lake.step(Move.allCases[action.utf8.reduce(0) { $0 + Int($1) } % 4].rawValue)
    }
}

/// Countdown whose every action is a calculator call, so the episodes carry tool messages.
final class AlwaysCalc: Environment {
    let inner: CountdownTool
    init() throws { inner = try CountdownTool(.init(maxTurns: 2)) }
    var instructions: String { "Count." }
    var maxTurns: Int { inner.maxTurns }
    func reset(seed: UInt64) throws -> Observation { try inner.reset(seed: seed) }
    func step(_ action: String) throws -> StepOutcome { try inner.step("<calc>1 + 2</calc>") }
}

/// Episodes played through the cache kept across turns: their tokens, masks and turn records, the
/// logprobs of a teacher-forced pass over the whole dialogue, and GiGPO's step groups over them.
final class EpisodeTests: XCTestCase {
    let map = ["SFFF", "FFFF", "FFFH", "HFFG"]

    func play(count: Int, turns: Int = 3, seed: UInt64 = 5) throws -> (CausalLM, Tokenizer, [Episode]) {
        let p = try Pretrained.tinyRandom(seed: 1)   // a 512-position context
        let (m, tok) = (p.model, p.tokenizer)
        let runner = EpisodeRunner(sampler: Sampler(model: m, tokenizer: tok), chat: .chatML(defaultSystem: nil), capacity: 400)
        let envs: [Environment] = try (0..<count).map { _ in try AnyTextLake(.init(maxTurns: turns, map: map)) }
        let episodes = try runner.play(envs, seeds: Array(repeating: 1, count: count), sampling: SamplingConfig(temperature: 1, maxNewTokens: 4, seed: seed))
        return (m, tok, episodes)
    }

    func testEpisodesRecordActionsObservationsAndTurns() throws {
        let (_, tok, episodes) = try play(count: 3)
        for e in episodes {
            XCTAssertTrue(tok.decode(e.prompt).contains("PFFF\nFFFF\nFFFH\nHFFG"))
            XCTAssertEqual([e.tokens.count, e.actionMask.count, e.logprobs.count, e.turnIds.count], Array(repeating: e.tokens.count, count: 4))
            XCTAssertFalse(e.turns.isEmpty)
            XCTAssertLessThanOrEqual(e.turns.count, 3)
            for (k, t) in e.turns.enumerated() {
                XCTAssertTrue(e.actionMask[t.start..<(t.start + t.length)].allSatisfy { $0 }, "turn \(k)'s tokens are actions")
                XCTAssertTrue(e.turnIds[t.start..<(t.start + t.length)].allSatisfy { $0 == k })
                // Between this action and the next, the observation: context only, and it shows the next map.
                if k + 1 < e.turns.count {
                    let between = Array(e.tokens[(t.start + t.length)..<e.turns[k + 1].start])
                    XCTAssertFalse(between.isEmpty)
                    XCTAssertTrue(e.actionMask[(t.start + t.length)..<e.turns[k + 1].start].allSatisfy { !$0 })
                    XCTAssertTrue(tok.decode(between).contains(e.turns[k + 1].observation), tok.decode(between))
                    XCTAssertTrue(tok.decode(between).hasSuffix("<|im_start|>assistant\n"))
                }
            }
            XCTAssertEqual(e.actionMask.filter { $0 }.count, e.turns.reduce(0) { $0 + $1.length })
            XCTAssertTrue(["done", "turns"].contains(e.finish), e.finish)
            XCTAssertEqual(e.success, e.finish == "done" && e.totalReward > 0)
        }
    }

    /// Under a template that trims message content (Llama-3), each observation follows the sampled
    /// action as it is: the tokens between two actions are the continuation, never a re-rendered action.
    func testObservationsFollowTheSampledActionUnderATrimmingTemplate() throws {
        let p = try Pretrained.tinyRandom(seed: 1)
        let runner = EpisodeRunner(sampler: Sampler(model: p.model, tokenizer: p.tokenizer), chat: .llama3, capacity: 500)
        let envs: [Environment] = try (0..<3).map { _ in try AnyTextLake(.init(maxTurns: 3, map: map)) }
        let episodes = try runner.play(envs, seeds: [1, 1, 1], sampling: SamplingConfig(temperature: 1, maxNewTokens: 4, seed: 2))
        var checked = 0
        for e in episodes {
            for (k, t) in e.turns.enumerated() where k + 1 < e.turns.count {
                let between = p.tokenizer.decode(Array(e.tokens[(t.start + t.length)..<e.turns[k + 1].start]))
                let continuation = ChatTemplate.llama3.continuation(ChatMessage(role: "user", content: e.turns[k + 1].observation))
                // All of it, less the end-of-turn token when the action already ended with one.
                XCTAssertTrue(continuation.hasSuffix(between) && between.contains(e.turns[k + 1].observation.trimmingCharacters(in: .whitespacesAndNewlines)), between)
                XCTAssertTrue(between == continuation || p.tokenizer.eosIds.contains(e.tokens[t.start + t.length - 1]), between)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// A tool's result comes back in the tool role.
    func testToolResultsAreToolMessages() throws {
        let p = try Pretrained.tinyRandom(seed: 1)
        let runner = EpisodeRunner(sampler: Sampler(model: p.model, tokenizer: p.tokenizer), chat: .chatML(defaultSystem: nil), capacity: 400)
        let e = try runner.play([try AlwaysCalc()], seeds: [3], sampling: SamplingConfig(temperature: 1, maxNewTokens: 4, seed: 1))[0]
        XCTAssertEqual(e.turns.count, 2)
        let between = p.tokenizer.decode(Array(e.tokens[(e.turns[0].start + e.turns[0].length)..<e.turns[1].start]))
        XCTAssertTrue(between.contains("<|im_start|>tool\n1 + 2 = 3<|im_end|>"), between)
    }

    /// The action tokens' logprobs equal a teacher-forced pass over the whole dialogue (1e-4).
    func testCachedTurnsMatchTheWholeDialogue() throws {
        let (m, _, episodes) = try play(count: 3)
        for e in episodes {
            let all = e.prompt + e.tokens
            let lp = try withTorchErrors { () throws -> [Double] in
                try withNoGrad {
                    let logits = try m(Tensor(all.dropLast().map(Int64.init), shape: [1, all.count - 1])).to(dtype: .float32).logSoftmax(dim: -1)
                    let next = Tensor(all.dropFirst().map(Int64.init), shape: [1, all.count - 1, 1])
                    return try logits.gather(dim: 2, index: next).doubles()
                }
            }
            for i in e.tokens.indices where e.actionMask[i] {
                XCTAssertEqual(e.logprobs[i], lp[e.prompt.count - 1 + i], accuracy: 1e-4, "token \(i)")
            }
        }
    }

    /// On one map from one seed every episode starts in the same state: GiGPO forms step groups
    /// of several turns, and episodes that move reach more than one state.
    func testGiGPOGetsStatesAndStepGroups() throws {
        let (_, _, episodes) = try play(count: 4)
        XCTAssertTrue(episodes.contains { Set($0.turns.map(\.stateKey)).count > 1 }, "\(episodes.map { $0.turns.map(\.stateKey) })")
        let batch = CreditBatch(groups: [Group(id: "lake", trajectories: episodes.map(\.trajectory))])
        let result = try CreditConfig(method: .gigpo).estimator.estimate(batch)
        XCTAssertGreaterThan(try XCTUnwrap(result.diagnostics["gigpo_step_group_size_mean"]), 1)
        for (e, t) in zip(episodes, batch.groups[0].trajectories) {
            XCTAssertEqual(t.states?.map(\.index), e.turns.map(\.start))
            XCTAssertEqual(t.stepRewards?.map(\.reward), e.turns.map(\.reward))
        }
    }
}
