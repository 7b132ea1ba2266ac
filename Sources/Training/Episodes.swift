import Credit
import Environments
import Foundation
import Models
import Rollout

/// One played episode as training reads it: the rendered first prompt (instructions and first
/// observation, with the generation prompt), then every later token of the dialogue — the model's
/// actions and the observations between them, which are context only (`actionMask` false).
public struct Episode: Codable, Equatable, Sendable {
    public struct Turn: Codable, Equatable, Sendable {
        /// The observation the action answers, and its state key.
        public var observation: String, stateKey: String
        public var action: String
        public var reward: Double
        public var valid: Bool
        /// Index in `tokens` of the action's first token, and its token count.
        public var start: Int, length: Int

        enum CodingKeys: String, CodingKey { case observation, action, reward, valid, start, length, stateKey = "state_key" }
    }

    public var seed: UInt64
    public var prompt: [Int]
    public var tokens: [Int] = []
    public var actionMask: [Bool] = []
    /// Per token: the sampling logprob and entropy of an action token (0 on observation tokens).
    public var logprobs: [Double] = [], entropies: [Double] = []
    /// Per token: its turn (an observation counts to the turn it follows).
    public var turnIds: [Int] = []
    public var turns: [Turn] = []
    public var success = false
    /// `done` (the environment ended it), `turns` (the turn limit), `context` (no room for another turn).
    public var finish = "turns"

    /// The environment's rewards summed: the episode's return.
    public var totalReward: Double { turns.reduce(0) { $0 + $1.reward } }

    /// The credit trajectory: the return as its reward, a state mark at each turn's first action
    /// token (GiGPO's anchor states) and the turn's reward at its last action token.
    public var trajectory: Trajectory {
        var t = Trajectory(tokens: tokens, reward: totalReward, logprobs: logprobs, entropies: entropies)
        t.states = turns.map { StateMark(index: $0.start, key: $0.stateKey) }
        t.stepRewards = turns.map { StepReward(index: $0.start + Swift.max($0.length, 1) - 1, reward: $0.reward) }
        t.actionMask = actionMask
        return t
    }
}

/// Plays environments with the policy, many episodes at once, through one `DialogueSampler`: the
/// first prompt is rendered by the chat template, each observation is appended as the template's
/// continuation after the sampled action (as a user or tool message), each turn's tokens
/// are sampled from the cache kept across turns, and only the new tokens of each turn enter it.
public struct EpisodeRunner {
    public let sampler: Sampler
    public let chat: ChatTemplate
    /// Positions the cache holds per episode (padding between turns included).
    public var capacity: Int
    /// End an episode at its first invalid action (else it continues with the environment's penalty).
    public var endOnInvalid = false

    public init(sampler: Sampler, chat: ChatTemplate, capacity: Int, endOnInvalid: Bool = false) {
        self.sampler = sampler; self.chat = chat; self.capacity = capacity; self.endOnInvalid = endOnInvalid
    }

    /// One episode per environment, `envs[i]` reset with `seeds[i]`; `sampling.seed` seeds the
    /// actions (with the episode's index in the step, `firstIndex + i`: a data-parallel rank's
    /// episodes come after the earlier ranks').
    public func play(_ envs: [Environment], seeds: [UInt64], sampling: SamplingConfig, firstIndex: Int = 0) throws -> [Episode] {
        guard envs.count == seeds.count, !envs.isEmpty else { throw TrainingError("episodes: \(envs.count) environments for \(seeds.count) seeds") }
        let tok = sampler.tokenizer
        var episodes = [Episode](), observations = [Observation]()
        for (k, (env, seed)) in zip(envs, seeds).enumerated() {
            // Each episode its own luck in a stochastic environment (the same again when the run is repeated).
            let first = try env.reset(seed: seed, episode: Sampler.seed(sampling.seed, firstIndex + k, 1))
            let m = [ChatMessage(role: "user", content: env.instructions + "\n\n" + first.text)]
            observations.append(first)
            episodes.append(Episode(seed: seed, prompt: tok.encode(chat.render(m, addGenerationPrompt: true))))
        }
        let dialogue = try DialogueSampler(sampler: sampler, seeds: envs.indices.map { Sampler.seed(sampling.seed, firstIndex + $0, 0) }, capacity: capacity)
        try dialogue.append(episodes.map(\.prompt))
        var turn = 0
        while !dialogue.live.isEmpty {
            var chunks = [Int: [Int]]()
            for c in try dialogue.sampleTurn(config: sampling) {
                let i = c.promptIndex, env = envs[i]
                let outcome = try env.step(c.text)
                episodes[i].turns.append(.init(observation: observations[i].text, stateKey: observations[i].stateKey, action: c.text,
                                               reward: outcome.reward, valid: outcome.valid, start: episodes[i].tokens.count, length: c.tokens.count))
                record(&episodes[i], tokens: c.tokens, action: true, turn: turn, logprobs: c.logprobs, entropies: c.entropies)
                let next = outcome.done || (endOnInvalid && !outcome.valid) ? nil : outcome.observation
                if outcome.done { episodes[i].finish = "done"; episodes[i].success = outcome.success }
                if endOnInvalid && !outcome.valid { episodes[i].finish = "invalid" }
                guard let next, turn + 1 < env.maxTurns else { continue }
                let chunk = tok.encode(Self.chunk(chat.continuation(ChatMessage(role: next.role, content: next.text)), after: c, tok))
                guard chunk.count + sampling.maxNewTokens <= dialogue.room else { episodes[i].finish = "context"; continue }
                observations[i] = next
                chunks[i] = chunk
                record(&episodes[i], tokens: chunk, action: false, turn: turn, logprobs: nil, entropies: nil)
            }
            dialogue.keep(Set(chunks.keys))
            if !dialogue.live.isEmpty { try dialogue.append(dialogue.live.map { chunks[$0]! }) }
            turn += 1
        }
        return episodes
    }

    func record(_ e: inout Episode, tokens: [Int], action: Bool, turn: Int, logprobs: [Double]?, entropies: [Double]?) {
        e.tokens += tokens
        e.actionMask += Array(repeating: action, count: tokens.count)
        e.logprobs += logprobs ?? Array(repeating: 0, count: tokens.count)
        e.entropies += entropies ?? Array(repeating: 0, count: tokens.count)
        e.turnIds += Array(repeating: turn, count: tokens.count)
    }

    /// The text to append after an action: the template's continuation, less the end-of-turn
    /// token when the action already ended with it (sampling stops on it, an EOS id or one of
    /// `stop_token_ids`, and keeps it).
    static func chunk(_ continuation: String, after action: Completion, _ tok: Tokenizer) -> String {
        guard action.finishReason == .eos, let last = action.tokens.last else { return continuation }
        let end = tok.decode([last])
        return !end.isEmpty && continuation.hasPrefix(end) ? String(continuation.dropFirst(end.count)) : continuation
    }
}
