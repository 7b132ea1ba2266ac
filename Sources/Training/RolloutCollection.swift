import Foundation
import Models
import Rewards
import Rollout

/// A rollout with the tree structure a tree rollout gives it.
struct Rolled: Codable {
    var completion: Completion
    var treePath: [String]?
    var segments: [Int]?
    /// An agent's episode (its tokens are the completion's) and its score (the environment's rewards).
    var episode: Episode? = nil
    var score: RewardScore? = nil
}

/// Where a step's rollouts come from: flat samples of each prompt, or trees (`TreeRollouts`).
protocol RolloutSource {
    /// The rollouts of `prompts`, each completion's `promptIndex` pointing into `prompts`.
    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled]
    /// The same, knowing the samples (an agent's environment seeds); by default the prompts decide.
    func rollouts(_ batch: [TaskSample], _ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled]
}

extension RolloutSource {
    func rollouts(_ batch: [TaskSample], _ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        try rollouts(prompts, sampling, schedule)
    }
}

/// `n` independent samples of each prompt.
struct FlatRollouts: RolloutSource {
    let sampler: Sampler
    let n: Int

    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig, _ schedule: TemperatureSchedule) throws -> [Rolled] {
        try sampler.sample(prompts: prompts, n: n, config: sampling, schedule: schedule).map { Rolled(completion: $0) }
    }
}

/// Everything a step sampled: every prompt (refills appended), its rollouts and their rewards, and
/// which prompts train.
struct StepRollouts {
    var samples: [TaskSample] = []
    var prompts: [[Int]] = []
    var rolled: [Rolled] = []
    var scores: [RewardScore] = []
    /// Rollout indices of each prompt.
    var rolloutsOf: [[Int]] = []
    /// The prompts that train, at most as many as the step asked for.
    var kept: [Int] = []
    var seconds = 0.0
    /// DARS's second stage: prompts that got extra samples, and how many.
    var extra = (prompts: 0, samples: 0)

    /// Kept prompts per refill round on every rank (data-parallel dynamic sampling).
    var keptPerRound: [[Int]] = []
    /// The refill round each prompt was sampled in, and its index among the step's prompts on
    /// every rank (round by round, rank by rank: its group's id, as one process numbers it).
    var roundOf: [Int] = [], groupOf: [Int] = []

    /// How a step collects its rollouts.
    struct Plan {
        let source: RolloutSource
        let tokenizer: Tokenizer
        let reward: RewardFunction
        /// DAPO dynamic sampling: groups whose rewards are all equal are dropped and refilled,
        /// with `more(n)` asked for n further prompts, up to `maxRefills` times.
        let dynamicSampling: Bool
        let maxRefills: Int
        /// DARS's extra samples for low pass-rate prompts, drawn by the flat source's sampler.
        var dars: DARSConfig? = nil
        /// Data-parallel: each round's prompts are split over the ranks, and what is kept counted over all.
        var dp: DataParallel? = nil
        /// Optimizer steps taken before this one (reward curricula read it).
        var step = 0
        /// Readies the sampler for this rank's `share` of a round's `batch` (its seeds depend on the prompts before it).
        var prepare: ([TaskSample], Range<Int>) -> Void = { _, _ in }
    }

    /// The step's rollouts of `samples` (every rank's; this rank samples its share of each round).
    /// With dynamic sampling the step keeps the first `samples.count` groups of every rank, round
    /// by round and rank by rank (the order one process keeps them in); refills are drawn for the
    /// whole step, so every rank draws the same ones.
    static func collect(_ samples: [TaskSample], _ plan: Plan, sampling start: SamplingConfig, schedule: TemperatureSchedule,
                        more: ((Int) -> [TaskSample])?) throws -> StepRollouts {
        let began = DispatchTime.now().uptimeNanoseconds
        var r = StepRollouts(), sampling = start, batch = samples, round = 0, keptSoFar = 0, mine = [[Int]](), roundStart = 0
        while true {
            let offset = r.samples.count, share = plan.dp?.share(batch.count) ?? batch.indices
            r.groupOf += share.map { roundStart + $0 }
            roundStart += batch.count
            plan.prepare(batch, share)
            let local = Array(batch[share])
            var tokens = local.map { plan.tokenizer.encode($0.prompt) }
            r.rolloutsOf += local.map { _ in [] }
            for var one in local.isEmpty ? [] : try plan.source.rollouts(local, tokens, sampling, schedule) {
                // An episode's prompt is the environment's first observation, rendered.
                if let e = one.episode { tokens[one.completion.promptIndex] = e.prompt }
                one.completion.promptIndex += offset
                r.rolloutsOf[one.completion.promptIndex].append(r.rolled.count)
                r.scores.append(try one.score ?? plan.reward.score(one.completion, of: local[one.completion.promptIndex - offset], tokenizer: plan.tokenizer,
                                                                   step: plan.step))
                r.rolled.append(one)
            }
            r.samples += local
            r.prompts += tokens
            r.roundOf += local.map { _ in round }
            if let dars = plan.dars {
                // Validation admits DARS only for flat rollouts from the local sampler.
                guard let flat = plan.source as? FlatRollouts else { throw TrainingError("train.dars draws flat samples of one-turn prompts; this run's rollouts are not flat") }
                r.extra = try r.addDARSRollouts(from: offset, dars, sampler: flat.sampler, reward: plan.reward, sampling: sampling, schedule: schedule,
                                                 step: plan.step, dp: plan.dp)
                r.kept += try (offset..<r.samples.count).filter { try r.keptByDARS($0) }
                break
            }
            guard plan.dynamicSampling else {
                r.kept = Array(offset..<r.samples.count)
                break
            }
            let now = (offset..<r.samples.count).filter { p in Set(r.rolloutsOf[p].map { r.scores[$0].value }).count > 1 }
            mine.append(now)
            let counts = try plan.dp.map { try $0.group.allGather([Double(now.count)]).map { Int($0[0]) } } ?? [now.count]
            r.keptPerRound.append(counts)
            keptSoFar += counts.reduce(0, +)
            guard keptSoFar < samples.count, round < plan.maxRefills, let more else { break }
            round += 1
            batch = more(samples.count - keptSoFar)
            if batch.isEmpty { break }
            sampling.seed &+= 0x9E37_79B9
        }
        if plan.dynamicSampling { r.kept = r.firstKept(mine, limit: samples.count, rank: plan.dp?.rank ?? 0) }
        r.seconds = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
        return r
    }

    /// This rank's kept prompts of each round, cut to the step's first `limit` over all ranks
    /// (`keptPerRound` holds every rank's counts).
    func firstKept(_ mine: [[Int]], limit: Int, rank: Int) -> [Int] {
        var before = 0, out = [Int]()
        for (k, kept) in mine.enumerated() {
            let counts = keptPerRound[k], start = before + counts[..<rank].reduce(0, +)
            out += kept.prefix(Swift.max(0, Swift.min(kept.count, limit - start)))
            before += counts.reduce(0, +)
        }
        return out
    }

    /// The step's rollout metrics: rewards and their parts, accuracy, length, speed, groups.
    var metrics: [String: Double] {
        var m: [String: Double] = [:]
        let sampled = rolled.reduce(0) { $0 + $1.completion.tokens.count }
        let rewards = scores.map(\.value)
        let mean = rewards.reduce(0, +) / Double(rewards.count)
        m["reward_mean"] = mean
        m["reward_std"] = (rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rewards.count)).squareRoot()
        m["response_length"] = Double(sampled) / Double(rolled.count)
        m["rollout_tokens"] = Double(sampled)
        m["rollout_seconds"] = seconds
        m["rollout_tokens_per_second"] = Double(sampled) / Swift.max(seconds, 1e-9)
        m["groups_sampled"] = Double(samples.count)
        m["groups_kept"] = Double(kept.count)
        if extra.samples > 0 { m["dars_prompts"] = Double(extra.prompts); m["dars_extra_rollouts"] = Double(extra.samples) }
        for k in Set(scores.flatMap(\.components.keys)) {
            m["reward_\(k)"] = scores.map { $0.components[k] ?? 0 }.reduce(0, +) / Double(scores.count)
        }
        if scores.contains(where: { $0.components["correct"] != nil }) {
            m["accuracy"] = Double(scores.filter { ($0.components["correct"] ?? 0) > 0 }.count) / Double(scores.count)
        }
        return m
    }
}

extension RewardFunction {
    /// The reward of a sampled completion of `sample`'s prompt, with each token's logprob and where
    /// its bytes end in the text (`tokenizer` decodes them).
    /// `step`: the optimizer steps taken before `c` was sampled.
    func score(_ c: Completion, of sample: TaskSample, tokenizer: Tokenizer, step: Int = 0) throws -> RewardScore {
        try checkedScore(RewardInput(prompt: sample.prompt, response: c.text, answer: sample.answer, responseTokens: c.tokens.count,
                          truncated: c.finishReason == .length, tokenLogprobs: c.logprobs, tokenEnds: c.byteEnds(tokenizer), step: step))
    }
}

extension Completion {
    /// Where each token ends in the text, in UTF-8 bytes (what reward terms that read tokens map by).
    func byteEnds(_ tokenizer: Tokenizer) -> [Int] { tokenizer.byteEnds(tokens) }
}

extension Tokenizer {
    /// The UTF-8 byte offset at which each of `tokens` ends, counted from the first.
    func byteEnds(_ tokens: [Int]) -> [Int] {
        var end = 0
        return tokens.map { end += bytes(of: $0).count; return end }
    }
}
