import Foundation
import Rewards
import Rollout

/// DARS, "Depth-Breadth Synergy in RLVR" (arXiv:2508.13755; yangzhch6/DARS @9b21b71,
/// `ray_dars_trainer.py` `schedule_ET` / `schedule_HW`, with `grpo_use_std` false as every released
/// script): after a step's N samples per prompt, a prompt whose pass rate p̂ is below ½ gets ΔN
/// more samples from the same policy (p̂ = 0 counts as 0.5/N), with S = 2p̂(1 − p̂):
/// - `et` (equal treatment): ΔN = ⌈(N/2 − N·S)/S⌉ = ⌈N/(4p̂(1 − p̂)) − N⌉
/// - `hw` (hardness-weighted): ΔN = ⌈(2(1 − p̂)·N/2 − N·S)/S⌉ = ⌈N/(2p̂) − N⌉
/// each capped at `n_max` − N (32 for et, 64 for hw, as the scripts). A prompt's group is then all of
/// its samples, and groups whose pass rate is 0 or 1 after the extra samples are dropped (the
/// official `upper_threshold` 1). The advantage is the credit method's over the merged groups; the
/// official one is GRPO without the std division (`credit: {method: grpo, params: {std_normalize: false}}`).
public struct DARSConfig: Codable, Equatable, Sendable {
    public enum Schedule: String, Codable, Sendable, CaseIterable { case et, hw }
    public var schedule: Schedule = .et
    /// Most samples of one prompt, first ones included; nil: 32 (et) or 64 (hw).
    public var nMax: Int? = nil

    public init(schedule: Schedule = .et, nMax: Int? = nil) { self.schedule = schedule; self.nMax = nMax }

    enum CodingKeys: String, CodingKey { case schedule, nMax = "n_max" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schedule = try c.decodeIfPresent(Schedule.self, forKey: .schedule) ?? .et
        nMax = try c.decodeIfPresent(Int.self, forKey: .nMax)
    }

    public var cap: Int { nMax ?? (schedule == .et ? 32 : 64) }

    /// The extra samples of a prompt with `correct` of `n` samples right, as the official
    /// schedules compute them (the same operations, so the ceiling falls the same way).
    public func extra(correct: Int, of n: Int) -> Int {
        guard n > 0 else { return 0 }
        var acc = Double(correct) / Double(n)
        if acc <= 1e-6 { acc = 0.5 / Double(n) }
        if acc >= 0.5 { return 0 }
        let s = 2 * acc * (1 - acc), peak = 0.5 * Double(n), current = Double(n) * s
        let delta = (schedule == .et ? peak - current : 2 * (1 - acc) * peak - current) / s
        return Swift.max(0, Swift.min(Int(delta.rounded(.up)), cap - n))
    }
}

extension StepRollouts {
    /// Whether rollout `i` is right: the reward's `correct` term, which DARS's pass rates count
    /// (`reader` says who reads it, for the error).
    func passed(_ i: Int, reader: String = "train.dars counts each prompt's pass rate") throws -> Bool {
        guard let c = scores[i].components["correct"] else {
            throw TrainingError("\(reader) from the reward's 'correct' term, and this reward has none; add one (reward: {terms: [{type: correct}]})")
        }
        return c > 0
    }

    /// DARS's second stage for the prompts from `first` on: each prompt's extra samples (one call,
    /// each copy of a prompt one sample, seeded apart from the first stage), appended to its
    /// rollouts and scored. Returns how many prompts got extra samples and how many samples.
    /// Data-parallel (`dp`): the earlier ranks' copies count toward each prompt's repeats, so every
    /// copy is seeded as one process would seed it.
    mutating func addDARSRollouts(from first: Int, _ dars: DARSConfig, sampler: Sampler, reward: RewardFunction,
                                  sampling: SamplingConfig, schedule: TemperatureSchedule, step: Int = 0,
                                  dp: DataParallel? = nil) throws -> (prompts: Int, samples: Int) {
        var copies = [Int]()
        for p in first..<samples.count {
            let n = rolloutsOf[p].count
            let extra = dars.extra(correct: try rolloutsOf[p].filter { try passed($0) }.count, of: n)
            copies += Array(repeating: p, count: extra)
        }
        if let dp {
            let earlier = try dp.gather(copies.map { prompts[$0] }).prefix(dp.rank).flatMap { $0 }
            sampler.priorRepeats = earlier.reduce(into: [:]) { $0[$1, default: 0] += 1 }
        }
        guard !copies.isEmpty else { return (0, 0) }
        var stage = sampling
        stage.seed ^= 0xDA25_5EC0_9D57_A6E1
        let completions = try sampler.sample(prompts: copies.map { prompts[$0] }, n: 1, config: stage, schedule: schedule)
        for var c in completions {
            let p = copies[c.promptIndex]
            c.promptIndex = p
            rolloutsOf[p].append(rolled.count)
            scores.append(try reward.score(c, of: samples[p], tokenizer: sampler.tokenizer, step: step))
            rolled.append(Rolled(completion: c))
        }
        return (Set(copies).count, copies.count)
    }

    /// DARS keeps a prompt only when its merged samples neither all pass nor all fail.
    func keptByDARS(_ p: Int) throws -> Bool {
        let passes = try rolloutsOf[p].filter { try passed($0) }.count
        return passes > 0 && passes < rolloutsOf[p].count
    }
}
