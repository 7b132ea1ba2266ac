import Environments
import Foundation
import Models
import Rewards
import Rollout

/// An agent run's rollouts: `n` episodes from each sample's environment seed, played together. The
/// environments are made once and reused (an external process keeps running between steps).
final class EpisodeRollouts: RolloutSource {
    /// The step's index of the next call's first episode (past the earlier ranks' in a data-parallel step).
    var firstEpisode = 0
    let runner: EpisodeRunner
    let agent: RunConfig.AgentSection
    let n: Int
    var pool: [Environment] = []

    init(runner: EpisodeRunner, agent: RunConfig.AgentSection, n: Int) {
        self.runner = runner
        self.agent = agent
        self.n = n
    }

    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        throw TrainingError("agent: episodes start from environment seeds, not prompts")
    }

    func rollouts(_ batch: [TaskSample], _ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        let seeds = try batch.map { s -> UInt64 in
            guard let seed = s.environmentSeed else { throw TrainingError("agent: sample '\(s.prompt.prefix(40))' has no environment seed") }
            return seed
        }
        let episodes = try play(seeds.flatMap { Array(repeating: $0, count: n) }, sampling)
        return episodes.enumerated().map { k, e in Self.rolled(e, group: k / n, sample: k % n) }
    }

    /// One episode per seed (in order), with environments from the pool.
    func play(_ seeds: [UInt64], _ sampling: SamplingConfig) throws -> [Episode] {
        while pool.count < seeds.count { pool.append(try agent.make()) }
        return try runner.play(Array(pool.prefix(seeds.count)), seeds: seeds, sampling: sampling, firstIndex: firstEpisode)
    }

    /// An episode as the trainer's rollout: its tokens after the first prompt, scored by its return.
    static func rolled(_ e: Episode, group: Int, sample: Int) -> Rolled {
        let c = Completion(promptIndex: group, sampleIndex: sample, tokens: e.tokens, samplingLogprobs: e.logprobs, logprobs: e.logprobs,
                           entropies: e.entropies, temperatures: [], finishReason: e.finish == "done" ? .eos : .length,
                           text: e.turns.map(\.action).joined(separator: "\n"))
        let score = RewardScore(value: e.totalReward, components: ["success": e.success ? 1 : 0, "turns": Double(e.turns.count),
                                                                   "invalid": Double(e.turns.filter { !$0.valid }.count)])
        return Rolled(completion: c, treePath: nil, segments: nil, episode: e, score: score)
    }
}

/// The reward of an agent run is the environment's: each episode comes scored by its rewards, and
/// a response outside an episode has none to give.
struct EnvironmentReward: RewardFunction {
    var name: String { "environment" }
    /// Each turn's environment reward is a step reward of the episode.
    var givesStepRewards: Bool { true }
    func score(_ input: RewardInput) -> RewardScore {
        preconditionFailure("agent: rewards come from the environment with each episode; no response is scored outside one")
    }
}

extension TaskData {
    /// An agent run's data: environment seeds, the training ones and `eval_size` held-out ones
    /// drawn apart (the top bit tells them apart), from `data.seed`.
    static func episodes(_ data: RunConfig.DataSection) throws -> TaskData {
        let evalCount = Int(data.evalSize)
        guard Double(evalCount) == data.evalSize else { throw TrainingError("data: 'eval_size' must be a whole number of episodes for an agent, got \(data.evalSize)") }
        func seeds(_ n: Int, _ stream: UInt64, held: Bool) -> [TaskSample] {
            var rng = SplitMix64(seed: data.seed ^ stream)
            return (0..<n).map { _ in
                let s = (rng.next() >> 1) | (held ? 1 << 63 : 0)
                return TaskSample(prompt: "", source: "environment seed \(s)", environmentSeed: s)
            }
        }
        return TaskData(train: seeds(data.trainSize, 0x7EA1, held: false), eval: seeds(evalCount, 0xE7A1_5EED, held: true), reward: EnvironmentReward())
    }
}

extension Trainer {
    /// Success rate and return of `samples` episodes from each held-out seed, each a mean over seeds
    /// with its 95% interval; pass@k counts successes.
    public func evaluateEpisodes(_ seeds: [TaskSample], samples n: Int, sampling: SamplingConfig) throws -> EvalResult {
        guard let source = source as? EpisodeRollouts else { throw TrainingError("eval: episodes need an agent run") }
        let start = DispatchTime.now().uptimeNanoseconds
        var returns = [Double](), successes = [Int](), actionTokens = 0
        for chunk in stride(from: 0, to: seeds.count, by: Swift.max(1, 32 / n)) {
            let part = Array(seeds[chunk..<Swift.min(seeds.count, chunk + Swift.max(1, 32 / n))])
            let episodes = try source.play(part.flatMap { Array(repeating: $0.environmentSeed ?? 0, count: n) }, sampling)
            for g in part.indices {
                let mine = episodes[(g * n)..<((g + 1) * n)]
                returns.append(mine.reduce(0) { $0 + $1.totalReward } / Double(n))
                successes.append(mine.filter(\.success).count)
                actionTokens += mine.reduce(0) { $0 + $1.actionMask.filter { $0 }.count }
            }
        }
        return EvalResult(prompts: seeds.count, samplesPerPrompt: n, reward: Estimate(returns), accuracy: Estimate(successes.map { Double($0) / Double(n) }),
                          passAtK: EvalResult.passAtK(correct: successes, n: n), responseLength: Double(actionTokens) / Double(Swift.max(seeds.count * n, 1)),
                          seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
