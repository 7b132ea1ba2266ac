import Credit
import Foundation
import Models
import Objectives
import Rewards
import Rollout
import Torch

/// One RL step, top to bottom: sample → reward → credit → loss → optimizer.
/// The policy trains LoRA adapters (or every weight); the KL reference is the base model with
/// LoRA switched off (a frozen copy only for full fine-tuning).
public final class Trainer {
    public let model: CausalLM
    public let tokenizer: Tokenizer
    public let reward: RewardFunction
    public let config: TrainerConfig
    public let optimizer: AdamW
    let sampler: Sampler
    let reference: CausalLM?
    public private(set) var stepsDone = 0
    /// The last step's trained rollouts with their per-token advantages, in group order.
    public private(set) var lastRecords: [SampleRecord] = []

    public init(model: CausalLM, tokenizer: Tokenizer, reward: RewardFunction, config: TrainerConfig) throws {
        try config.validate()
        self.model = model
        self.tokenizer = tokenizer
        self.reward = reward
        self.config = config
        let (params, frozen) = try Trainer.trainable(model, lora: config.lora, seed: config.rollout.seed, reference: config.objective.klCoef != 0)
        optimizer = try AdamW(parameters: params, options: .init(lr: config.lr, weightDecay: config.weightDecay))
        reference = frozen
        sampler = Sampler(model: model, tokenizer: tokenizer)
    }

    /// The parameters to train — new LoRA adapters on `model`, or all its weights — and, when a
    /// reference is needed and every weight trains, a frozen copy of the model (with LoRA the
    /// reference is the base with the adapters switched off, which costs no copy).
    static func trainable(_ model: CausalLM, lora: LoRA.Config?, seed: UInt64, reference: Bool) throws -> ([Tensor], CausalLM?) {
        if let lora { return (try LoRA(attachingTo: model, config: lora, seed: seed).parameters, nil) }
        try withTorchErrors { for p in model.parameters { p.requiresGrad = true } }
        let copy = reference ? try CausalLM(config: model.config, weights: withTorchErrors { model.weights.mapValues { $0.detached().clone() } }) : nil
        return (model.parameters, copy)
    }

    /// A rollout with what credit assignment may need about it.
    struct Rolled {
        var completion: Completion
        var treePath: [String]?
        var segments: [Int]?
    }

    func rollouts(_ prompts: [[Int]], _ sampling: SamplingConfig) throws -> [Rolled] {
        if case .spoTree = config.credit {
            return try prompts.enumerated().flatMap { p, prompt in
                try sampler.sampleTree(prompt: prompt, config: sampling, tree: config.tree).trajectories.map { t in
                    var c = t.completion
                    c.promptIndex = p
                    return Rolled(completion: c, treePath: t.path, segments: t.segmentStarts)
                }
            }
        }
        return try sampler.sample(prompts: prompts, n: config.samplesPerPrompt, config: sampling).map { Rolled(completion: $0) }
    }

    /// Process rewards at byte offsets of the response → the token that covers each offset.
    func stepRewards(_ steps: [StepScore], tokens: [Int]) -> [Credit.StepReward] {
        var ends = [Int](), total = 0
        for t in tokens { total += tokenizer.bytes(of: t).count; ends.append(total) }
        return steps.compactMap { s in
            ends.firstIndex { $0 > s.offset }.map { Credit.StepReward(index: $0, reward: s.reward) }
        }
    }

    /// SPO-chain: Monte-Carlo values of each trajectory's cut points from `spo_continuations` completions.
    func spoChainValues(_ rolled: [Rolled], _ prompts: [[Int]], _ samples: [TaskSample], _ p: SPOChain.Params, _ sampling: SamplingConfig) throws -> [([Int], [Double])] {
        let cuts = rolled.map { SPOChain.cutpoints(logprobs: $0.completion.logprobs, threshold: p.probThreshold, interval: p.cutpointInterval) }
        var prefixes = [[Int]](), owner = [(Int, Int)]()
        for (i, r) in rolled.enumerated() {
            for (k, c) in cuts[i].enumerated() {
                prefixes.append(prompts[r.completion.promptIndex] + r.completion.tokens.prefix(c + 1))
                owner.append((i, k))
            }
        }
        var values = cuts.map { [Double](repeating: 0, count: $0.count) }
        guard !prefixes.isEmpty else { return cuts.map { ($0, []) } }
        var cfg = sampling
        cfg.seed &+= 0x5350_4F   // independent of the main rollouts
        let m = config.spoContinuations
        let outs = try sampler.continuations(prefixes: prefixes, m: m, config: cfg)
        for c in outs {
            let (i, k) = owner[c.promptIndex]
            let r = rolled[i].completion
            let partial = tokenizer.decode(Array(r.tokens.prefix(cuts[i][k] + 1)))
            let input = RewardInput(prompt: samples[r.promptIndex].prompt, response: partial + c.text, answer: samples[r.promptIndex].answer,
                                    responseTokens: cuts[i][k] + 1 + c.tokens.count, truncated: c.finishReason == .length)
            values[i][k] += reward.score(input).value / Double(m)
        }
        return zip(cuts, values).map { ($0, $1) }
    }

    /// TW-GRPO's K_t for one group: per response position, the mean over responses of
    /// Σ_v (e^{d} − d − 1), d = clamp(mean log-distribution − own, ±11); past a response's end the
    /// uniform distribution stands in.
    func positionScores(_ rows: [[Int]], promptLengths: [Int], responseLengths: [Int]) throws -> [Double] {
        try withNoGrad {
            let (ids, mask) = Self.batch(rows)
            let logits = try model(ids, attentionMask: mask).to(dtype: .float32).logSoftmax(dim: -1)    // [G, T, V]
            let longest = responseLengths.max() ?? 0
            let v = model.config.vocabSize
            let uniform = Tensor.full([longest, v], value: -Foundation.log(Double(v)))
            let per = rows.indices.map { i -> Tensor in
                let n = responseLengths[i]
                let own = logits[i].narrowed(dim: 0, start: promptLengths[i] - 1, length: n)
                return n < longest ? Tensor.cat([own, uniform.narrowed(dim: 0, start: n, length: longest - n)]) : own
            }
            let all = Tensor.stack(per)                                                                  // [G, L, V]
            let d = (all.mean(dim: 0, keepDim: true) - all).clamp(min: -11, max: 11)
            return try (d.exp() - d - 1).sum(dim: -1).mean(dim: 0).doubles()
        }
    }

    /// Right-padded token rows as ids and a 0/1 mask.
    static func batch(_ rows: [[Int]]) -> (Tensor, Tensor) {
        let t = rows.map(\.count).max()!
        let ids = rows.flatMap { $0.map(Int64.init) + Array(repeating: 0, count: t - $0.count) }
        let mask = rows.flatMap { Array(repeating: Int64(1), count: $0.count) + Array(repeating: 0, count: t - $0.count) }
        return (Tensor(ids, shape: [rows.count, t]), Tensor(mask, shape: [rows.count, t]))
    }

    /// The distinct prompts among `prompts` and, per entry, the index of its distinct prompt.
    static func distinct(_ prompts: [[Int]]) -> (unique: [[Int]], owner: [Int]) {
        var unique = [[Int]](), slot = [[Int]: Int]()
        let owner = prompts.map { p in
            if let i = slot[p] { return i }
            slot[p] = unique.count
            unique.append(p)
            return unique.count - 1
        }
        return (unique, owner)
    }

    /// The hidden states `[N, R, H]` that predict each token of responses continuing `prefix` (row n
    /// continues prefix row `owner[n]`; R = the longest response, at least 1): the prompt's last
    /// state predicts the first token, each response token's state the next.
    static func responseHidden(_ m: CausalLM, prefix: SharedPrefix, owner: [Int], responses: [[Int]]) throws -> Tensor {
        let longest = Swift.max(1, responses.map(\.count).max() ?? 1)
        let first = prefix.last.indexSelect(dim: 0, index: Tensor(owner.map(Int64.init)).to(m.device)).unsqueezed(dim: 1)   // [N, 1, H]
        guard longest > 1 else { return first }
        // Token k's input predicts token k + 1, so the last token of the longest response is no input.
        let inputs = batch(responses.map { Array($0.prefix(longest - 1)) }).0
        return Tensor.cat([first, try m.hidden(inputs, continuing: prefix, owner: owner)], dim: 1)
    }

    /// Per-token logprobs (and entropies) under `m` of responses that continue `prefix` (row n
    /// continues prefix row `owner[n]`), [N, R] right-padded (R = `width`, default the longest
    /// response; past a row's end its last value repeats). A group's n samples share one prompt, so
    /// the prompt is computed once for all of them; the vocabulary projection runs only over
    /// response positions.
    static func responseLogprobs(_ m: CausalLM, prefix: SharedPrefix, owner: [Int], responses: [[Int]], width: Int? = nil) throws -> (Tensor, Tensor) {
        let lengths = responses.map(\.count), longest = Swift.max(1, lengths.max() ?? 1)
        let hidden = try responseHidden(m, prefix: prefix, owner: owner, responses: responses)
        let targets = batch(responses.map { $0.isEmpty ? [0] : $0 }).0
        let (lp, ent) = m.tokenLogprobs(hidden: hidden, targets: targets.narrowed(dim: 1, start: 0, length: longest).to(m.device),
                                        chunk: Swift.max(1, 512 / responses.count))   // ~100 MB of logits per chunk
        let w = width ?? longest
        let idx = Tensor(lengths.flatMap { r in (0..<w).map { Int64(Swift.min($0, Swift.max(r, 1) - 1)) } }, shape: [responses.count, w]).to(m.device)
        return (lp.gather(dim: 1, index: idx), ent.gather(dim: 1, index: idx))
    }

    /// `body` under no-grad with the reference policy: `reference` (a frozen copy) when there is one,
    /// else `model` with its LoRA adapters switched off for the duration.
    static func withReference<T>(_ model: CausalLM, _ reference: CausalLM?, _ body: (CausalLM) throws -> T) throws -> T {
        try withNoGrad {
            if let reference { return try body(reference) }
            let adapters = model.lora
            model.lora = nil
            defer { model.lora = adapters }
            return try body(model)
        }
    }

    /// One step on `samples` (their prompts already in chat form). `progress` (0…1) drives
    /// schedules such as D³S's; `seed` (default: the rollout config's) seeds this step's sampling.
    /// With dynamic sampling on, groups whose rewards are all equal are dropped and `more(n)` is
    /// asked for n further prompts, up to `max_refills` times. Returns the step's metrics; the
    /// rollouts with their advantages are in `lastRecords`.
    public func step(_ samples: [TaskSample], progress: Double = 0, seed: UInt64? = nil,
                     more: ((Int) -> [TaskSample])? = nil) throws -> [String: Double] {
        guard !samples.isEmpty else { throw TrainingError("train: a step needs at least one prompt") }
        let start = DispatchTime.now().uptimeNanoseconds
        func seconds(_ from: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - from) / 1e9 }
        var sampling = config.rollout
        if let seed { sampling.seed = seed }
        // Every prompt sampled this step (refills appended), its rollouts and their rewards.
        var all = [TaskSample](), prompts = [[Int]](), rolled = [Rolled](), scores = [RewardScore]()
        // Rollout indices of each prompt in `all`; `kept` lists the prompts that train.
        var rolloutsOf = [[Int]](), kept = [Int]()
        var round = 0
        var batch = samples
        while true {
            let offset = all.count
            let tokens = batch.map { tokenizer.encode($0.prompt) }
            rolloutsOf += batch.map { _ in [] }
            for var r in try rollouts(tokens, sampling) {
                r.completion.promptIndex += offset
                rolloutsOf[r.completion.promptIndex].append(rolled.count)
                scores.append(reward.score(r.completion, of: batch[r.completion.promptIndex - offset]))
                rolled.append(r)
            }
            all += batch
            prompts += tokens
            kept += (offset..<all.count).filter { p in !config.dynamicSampling || Set(rolloutsOf[p].map { scores[$0].value }).count > 1 }
            guard config.dynamicSampling, kept.count < samples.count, round < config.maxRefills, let more else { break }
            round += 1
            batch = more(samples.count - kept.count)
            if batch.isEmpty { break }
            sampling.seed &+= 0x9E37_79B9
        }
        kept = Array(kept.prefix(samples.count))
        let rolloutSeconds = seconds(start)
        var metrics: [String: Double] = [:]
        let sampledTokens = rolled.reduce(0) { $0 + $1.completion.tokens.count }
        let rewards = scores.map(\.value)
        let mean = rewards.reduce(0, +) / Double(rewards.count)
        metrics["reward_mean"] = mean
        metrics["reward_std"] = (rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rewards.count)).squareRoot()
        metrics["response_length"] = Double(sampledTokens) / Double(rolled.count)
        metrics["rollout_seconds"] = rolloutSeconds
        metrics["rollout_tokens_per_second"] = Double(sampledTokens) / Swift.max(rolloutSeconds, 1e-9)
        metrics["groups_sampled"] = Double(all.count)
        metrics["groups_kept"] = Double(kept.count)
        metrics["lr"] = optimizer.learningRate
        for k in Set(scores.flatMap(\.components.keys)) {
            metrics["reward_\(k)"] = scores.map { $0.components[k] ?? 0 }.reduce(0, +) / Double(scores.count)
        }
        if scores.contains(where: { $0.components["correct"] != nil }) {
            metrics["accuracy"] = Double(scores.filter { ($0.components["correct"] ?? 0) > 0 }.count) / Double(scores.count)
        }
        stepsDone += 1
        lastRecords = []
        guard !kept.isEmpty else {
            // Every group agreed: nothing to learn from this step.
            metrics["step_seconds"] = seconds(start)
            return metrics
        }
        var spo: [([Int], [Double])]? = nil
        if case .spoChain(let p) = config.credit { spo = try spoChainValues(rolled, prompts, all, p, sampling) }
        // Rollout indices grouped by prompt; groups, loss rows and credit results share this order.
        let byPrompt = kept.map { rolloutsOf[$0] }
        var groups = [Credit.Group]()
        for (members, p) in zip(byPrompt, kept) {
            var g = Credit.Group(id: "p\(p)", trajectories: members.map { i in
                let c = rolled[i].completion
                return Trajectory(tokens: c.tokens, reward: scores[i].value, logprobs: c.logprobs, entropies: c.entropies,
                                  values: Array(repeating: 0, count: c.tokens.count),   // no critic: V = 0
                                  stepRewards: stepRewards(scores[i].steps, tokens: c.tokens),
                                  segments: rolled[i].segments ?? spo?[i].0, segmentValues: spo?[i].1,
                                  states: [StateMark(index: 0, key: "prompt \(p)")], treePath: rolled[i].treePath)
            })
            if case .twGRPO(let tw) = config.credit, tw.alpha != 1 {
                g.positionScores = try positionScores(members.map { prompts[p] + rolled[$0].completion.tokens },
                                                      promptLengths: members.map { _ in prompts[p].count },
                                                      responseLengths: members.map { rolled[$0].completion.tokens.count })
            }
            groups.append(g)
        }
        let credit = try config.credit.estimator.estimate(CreditBatch(groups: groups, progress: progress))
        let trainStart = DispatchTime.now().uptimeNanoseconds
        let trainedIndices = byPrompt.flatMap { $0 }
        let trained = trainedIndices.map { rolled[$0] }
        let rowPrompts = trained.map { prompts[$0.completion.promptIndex] }
        let rows = trained.map { prompts[$0.completion.promptIndex] + $0.completion.tokens }
        let responseLengths = trained.map(\.completion.tokens.count)
        try withTorchErrors {
            let device = model.device
            let (old, mask) = padded(trained.map(\.completion.logprobs), device: device)
            let advantages = padded(credit.advantages.flatMap { $0 }, device: device).values
            let weights = padded(credit.weights.flatMap { $0 }, device: device).values
            let width = mask.size(1)
            let micro = config.microBatch > 0 ? config.microBatch : rows.count
            // Each prompt runs once per pass over a set of rows: its n samples attend to its keys and values.
            // `prompts(rows)` gives the distinct prompts of those rows and each row's index among them.
            func prompts(_ rows: some Sequence<Int>) -> ([[Int]], [Int: Int]) {
                let rows = Array(rows), (unique, owner) = Self.distinct(rows.map { rowPrompts[$0] })
                return (unique, Dictionary(uniqueKeysWithValues: zip(rows, owner)))
            }
            func logprobs(_ m: CausalLM, _ prefix: SharedPrefix, _ owner: [Int: Int], _ r: [Int]) throws -> (Tensor, Tensor) {
                try Self.responseLogprobs(m, prefix: prefix, owner: r.map { owner[$0]! }, responses: r.map { trained[$0].completion.tokens }, width: width)
            }
            var ref: Tensor? = nil
            if config.objective.klCoef != 0 {
                ref = try Self.withReference(model, reference) { m in
                    let (unique, owner) = prompts(rows.indices)
                    let prefix = try m.sharedPrefix(unique)
                    return Tensor.cat(try stride(from: 0, to: rows.count, by: micro).map {
                        try logprobs(m, prefix, owner, Array($0..<Swift.min(rows.count, $0 + micro))).0
                    }, dim: 0)
                }
            }
            // A mini-batch's loss is the configured aggregation over all its rows; each micro-batch
            // contributes its own aggregate times its share, so the gradient is the same as one pass.
            var objective = config.objective
            if objective.aggregation == .seqMeanTokenSumNorm && objective.normConstant == nil { objective.normConstant = Double(width) }
            let loss = try PolicyLoss(objective)
            let parts = Swift.min(config.miniBatches, rows.count)
            let bounds = (0...parts).map { $0 * rows.count / parts }
            for _ in 0..<config.epochs {
                for mb in 0..<parts {
                    let range = bounds[mb]..<bounds[mb + 1]
                    let tokens = Double(responseLengths[range].reduce(0, +))
                    var sums: [String: Double] = [:]
                    // The prompts run once (with autograd) for the whole mini-batch; micro-batches
                    // backpropagate into leaf copies of their keys and values, which then
                    // backpropagate through the prompts once.
                    let (unique, owner) = prompts(range)
                    let prefix = try model.sharedPrefix(unique)
                    let leaves = prefix.leaves()
                    // Micro-batches of rows of similar length, so each pads only to its own longest response.
                    let order = micro >= range.count ? Array(range) : range.sorted { (responseLengths[$0], $0) < (responseLengths[$1], $1) }
                    for a in stride(from: 0, to: order.count, by: micro) {
                        let r = Array(order[a..<Swift.min(order.count, a + micro)])
                        let pick = Tensor(r.map(Int64.init)).to(device)
                        let whole = r == Array(rows.indices)
                        func rowsOf(_ t: Tensor) -> Tensor { whole ? t : t.indexSelect(dim: 0, index: pick) }
                        let tokenShare = Double(r.reduce(0) { $0 + responseLengths[$1] }) / tokens
                        let (lp, ent) = try logprobs(model, leaves, owner, r)
                        let batch = PolicyBatch(logprobs: lp, oldLogprobs: rowsOf(old), advantages: rowsOf(advantages), mask: rowsOf(mask),
                                                rolloutLogprobs: rowsOf(old), refLogprobs: ref.map(rowsOf), weights: rowsOf(weights),
                                                entropies: ent, turns: Tensor.zeros(like: rowsOf(mask)).to(dtype: .int64))
                        let (l, m) = try loss(batch)
                        let share: Double = switch objective.aggregation {
                        case .tokenMean: tokenShare
                        case .seqMeanTokenMean, .seqMeanTokenSum: Double(r.count) / Double(range.count)
                        case .seqMeanTokenSumNorm: 1
                        }
                        (l * share).backward()
                        sums["loss", default: 0] += try l.item() * share
                        for (k, v) in m {
                            if k.hasSuffix("_max") { sums[k] = Swift.max(sums[k] ?? -.infinity, v) }
                            else if k.hasSuffix("_min") { sums[k] = Swift.min(sums[k] ?? .infinity, v) }
                            else { sums[k, default: 0] += v * tokenShare }
                        }
                    }
                    prefix.backward(from: leaves)
                    metrics.merge(sums) { $1 }
                    metrics["grad_norm"] = Torch.clipGradNorm(optimizer.parameters, maxNorm: config.maxGradNorm)
                    optimizer.step()
                    optimizer.zeroGrad()
                }
            }
        }
        metrics["train_seconds"] = seconds(trainStart)
        metrics["train_tokens_per_second"] = Double(rows.reduce(0) { $0 + $1.count } * config.epochs) / Swift.max(seconds(trainStart), 1e-9)
        metrics["step_seconds"] = seconds(start)
        for (k, v) in credit.diagnostics { metrics["credit_\(k)"] = v }
        let flatAdvantages = credit.advantages.flatMap { $0 }
        lastRecords = trained.enumerated().map { j, r in
            let c = r.completion, s = all[c.promptIndex], score = scores[trainedIndices[j]]
            return SampleRecord(prompt: s.prompt, answer: s.answer, response: c.text, reward: score.value, components: score.components,
                                group: c.promptIndex, tokens: c.tokens, pieces: c.tokens.map { tokenizer.decode([$0]) },
                                advantages: flatAdvantages[j], logprobs: c.logprobs, entropies: c.entropies, finishReason: c.finishReason.rawValue)
        }
        return metrics
    }
}

/// One rollout as `samples.jsonl` records it: per token, its id, text, advantage, logprob and entropy.
public struct SampleRecord: Codable, Equatable, Sendable {
    public var prompt: String
    public var answer: String?
    public var response: String
    public var reward: Double
    public var components: [String: Double]
    public var group: Int
    public var tokens: [Int]
    public var pieces: [String]
    public var advantages: [Double]
    public var logprobs: [Double]
    public var entropies: [Double]
    public var finishReason: String

    enum CodingKeys: String, CodingKey {
        case prompt, answer, response, reward, components, group, tokens, pieces, advantages, logprobs, entropies
        case finishReason = "finish_reason"
    }
}

extension RewardFunction {
    /// The reward of a sampled completion of `sample`'s prompt.
    func score(_ c: Completion, of sample: TaskSample) -> RewardScore {
        score(RewardInput(prompt: sample.prompt, response: c.text, answer: sample.answer,
                          responseTokens: c.tokens.count, truncated: c.finishReason == .length))
    }
}
