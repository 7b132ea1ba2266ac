import Foundation
import Models

/// AEPO in a run: after each step's rollouts are scored, every trained response's reward gains
/// AEPO's shaping s (`components["aepo"]`), from the sampler's per-token entropies (the policy's
/// full-vocabulary entropy at each sampled position). θ's median and the buckets' targets are over
/// the whole step: every rank's responses and groups, gathered in rank order.
final class AEPOShaping {
    let config: AEPOConfig
    let tokenizer: Tokenizer
    let words: Set<String>
    /// θ and α so far (saved with checkpoints, restored on resume).
    var state: AEPO.State
    private var isTrigger: [Int: Bool] = [:]

    init(config: AEPOConfig, tokenizer: Tokenizer) {
        self.config = config
        self.tokenizer = tokenizer
        words = config.words
        state = AEPO.State(config)
    }

    func trigger(_ id: Int) -> Bool {
        if let known = isTrigger[id] { return known }
        let yes = words.contains(AEPO.normalized(tokenizer.decode([id])))
        isTrigger[id] = yes
        return yes
    }

    /// Shapes the rewards of the kept groups of `r` and returns the step's AEPO metrics.
    func shape(_ r: inout StepRollouts, dp: DataParallel?) throws -> [String: Double] {
        let members = r.kept.map { r.rolloutsOf[$0] }
        var entropies = [Int: [Double]]()
        for i in members.joined() {
            let c = r.rolled[i].completion
            guard c.entropies.count == c.tokens.count else {
                throw TrainingError("aepo counts each trigger's window entropy from the sampler's per-token entropies, and this step's rollouts carry none "
                    + "(\(c.entropies.count) for \(c.tokens.count) tokens); use rollout.engine local")
            }
            entropies[i] = c.entropies
        }
        let mine = members.joined().map { AEPO.percentile(AEPO.windowMeans(entropies[$0]!, window: config.window), config.percentile) }
        let percentiles = try dp.map { try $0.gather(mine).flatMap { $0 } } ?? mine
        guard !percentiles.isEmpty else { return [:] }
        let (used, next) = AEPO.threshold(prior: state.threshold, percentiles: percentiles, decay: config.thresholdDecay)
        var counts = [Int: Double]()
        for i in members.joined() {
            let c = r.rolled[i].completion
            counts[i] = Double(AEPO.count(entropies[i]!, trigger: c.tokens.map(trigger), threshold: used, window: config.window))
        }
        let local = try members.map { m -> [Double] in
            [Double(try m.filter { try r.passed($0, reader: "aepo buckets each prompt by its pass rate") }.count) / Double(m.count),
             m.reduce(0) { $0 + counts[$1]! } / Double(m.count)]
        }
        let gathered = try dp.map { try $0.gather(local) } ?? [local]
        let first = gathered[..<(dp?.rank ?? 0)].reduce(0) { $0 + $1.count }
        let all = gathered.joined().map { (passRate: $0[0], meanCount: $0[1]) }
        let (difficulty, targets, alpha) = AEPO.buckets(all, alpha: state.alpha, config: config)
        for (g, m) in members.enumerated() {
            let d = difficulty[first + g]
            for i in m {
                let right = try r.passed(i, reader: "aepo")
                let s = config.reading == .released
                    ? AEPO.score(correct: right, .easy, count: counts[i]!, target: 0, alpha: config.alpha)
                    : AEPO.score(correct: right, d, count: counts[i]!, target: targets[d]!, alpha: alpha[d]!)
                r.scores[i].value += s
                r.scores[i].components["aepo"] = s
            }
        }
        state.threshold = next
        state.alpha = alpha
        return metrics(used: used, counts: Array(counts.values), difficulty: difficulty, targets: targets)
    }

    func metrics(used: Double, counts: [Double], difficulty: [AEPO.Difficulty], targets: [AEPO.Difficulty: Double]) -> [String: Double] {
        var m = ["aepo_threshold": used]
        if !counts.isEmpty { m["aepo_triggers_mean"] = counts.reduce(0, +) / Double(counts.count) }
        for d in AEPO.Difficulty.allCases {
            m["aepo_\(d.rawValue)_prompts"] = Double(difficulty.filter { $0 == d }.count)
            m["aepo_alpha_\(d.rawValue)"] = state.alpha[d]
            if let t = targets[d] { m["aepo_target_\(d.rawValue)"] = t }
        }
        return m
    }
}
