import Credit
import Models
import Rewards
import Rollout

/// Supplies SPO-chain's `segments` and `segment_values`: each trained response's cut points
/// (`SPOChain.cutpoints` over its sampling logprobs) and, for each, the mean reward of `m`
/// completions sampled from the prompt plus the response up to the cut.
struct MonteCarloValues: InputProvider {
    let sampler: Sampler
    let tokenizer: Tokenizer
    let reward: RewardFunction
    let params: SPOChain.Params
    /// Completions per cut point (`train.spo_continuations`).
    let m: Int

    func provide(_ inputs: inout StepInputs) throws {
        let r = inputs.rollouts
        var cuts = [Int: [Int]](), prefixes = [[Int]](), owner = [(Int, Int)]()
        for i in inputs.rows {
            let c = r.rolled[i].completion
            cuts[i] = SPOChain.cutpoints(logprobs: c.logprobs, threshold: params.probThreshold, interval: params.cutpointInterval)
            for (k, cut) in cuts[i]!.enumerated() {
                prefixes.append(inputs.prompt(of: i) + c.tokens.prefix(cut + 1))
                owner.append((i, k))
            }
        }
        var values = cuts.mapValues { [Double](repeating: 0, count: $0.count) }
        if !prefixes.isEmpty {
            var cfg = inputs.sampling
            cfg.seed &+= 0x5350_4F   // independent of the main rollouts
            for c in try sampler.continuations(prefixes: prefixes, m: m, config: cfg) {
                let (i, k) = owner[c.promptIndex]
                let done = r.rolled[i].completion, sample = r.samples[done.promptIndex], cut = cuts[i]![k]
                let partial = tokenizer.decode(Array(done.tokens.prefix(cut + 1)))
                let input = RewardInput(prompt: sample.prompt, response: partial + c.text, answer: sample.answer,
                                        responseTokens: cut + 1 + c.tokens.count, truncated: c.finishReason == .length)
                values[i]![k] += try reward.checkedScore(input).value / Double(m)
            }
        }
        inputs.fill { t, i in
            t.segments = cuts[i]
            t.segmentValues = values[i]
        }
    }
}
