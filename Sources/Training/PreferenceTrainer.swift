import Foundation
import Models
import Objectives
import Torch

/// A chosen/rejected pair (its prompt in chat form once `TaskData` has rendered it).
public struct PreferencePair: Equatable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    /// Per-token weights of both responses (weighted DPO's weights, SparsePO's masks).
    public var weights: TokenWeights?
    /// Whether each response is hallucinated (F-DPO's `h_w`, `h_l`).
    public var hallucinated: HallucinationLabels?
    /// T-REG's two revision prompts in chat form: the prompt asking for a better and for a worse answer.
    public var revision: (better: String, worse: String)?

    public static func == (a: PreferencePair, b: PreferencePair) -> Bool {
        a.prompt == b.prompt && a.chosen == b.chosen && a.rejected == b.rejected && a.weights == b.weights && a.hallucinated == b.hallucinated
            && a.revision?.better == b.revision?.better && a.revision?.worse == b.revision?.worse
    }
    public init(prompt: String, chosen: String, rejected: String, weights: TokenWeights? = nil, hallucinated: HallucinationLabels? = nil) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected; self.weights = weights; self.hallucinated = hallucinated
    }

    /// F-DPO's flip (the authors' `flip_sample`): a pair whose chosen response is hallucinated and
    /// whose rejected one is factual trades its responses, so the factual one is preferred.
    public var flippedForFactuality: PreferencePair {
        guard let h = hallucinated, h.chosen, !h.rejected else { return self }
        return PreferencePair(prompt: prompt, chosen: rejected, rejected: chosen, weights: weights.map { TokenWeights(chosen: $0.rejected, rejected: $0.chosen, chosenKL: $0.rejectedKL, rejectedKL: $0.chosenKL) },
                              hallucinated: HallucinationLabels(chosen: false, rejected: true))
    }
}

/// F-DPO's binary labels of a pair's responses: `h_w` (chosen) and `h_l` (rejected), 1 = hallucinated.
public struct HallucinationLabels: Equatable, Sendable {
    public var chosen: Bool
    public var rejected: Bool
    public init(chosen: Bool, rejected: Bool) { self.chosen = chosen; self.rejected = rejected }
}

/// Per-token weights of a pair's responses from the data file: one number per token of each
/// response under the model's tokenizer (the end token the trainer appends weighs 1).
public struct TokenWeights: Equatable, Sendable {
    public var chosen: [Double]
    public var rejected: [Double]
    /// SparsePO's KL masks m^d (default: the weights).
    public var chosenKL: [Double]?
    public var rejectedKL: [Double]?
    public init(chosen: [Double], rejected: [Double], chosenKL: [Double]? = nil, rejectedKL: [Double]? = nil) {
        self.chosen = chosen; self.rejected = rejected; self.chosenKL = chosenKL; self.rejectedKL = rejectedKL
    }
}

/// Offline preference training (DPO, IPO, TDPO, TGDPO, SparsePO, weighted DPO) on pairs, with
/// the RL trainer's machinery: the same LoRA/full-weight policy, reference (the base with LoRA
/// off, or a frozen copy), AdamW and clipping. Responses end with the tokenizer's end token, so
/// the policy also learns where to stop.
public final class PreferenceTrainer {
    public let model: CausalLM
    public let tokenizer: Tokenizer
    public let loss: PreferenceLoss
    public let optimizer: AdamW
    let maxGradNorm: Double
    /// This process's rank when the pairs of a step are split over several (nil: one process).
    public var dataParallel: DataParallel?
    let forward: ResponseForward
    /// The frozen token-reward model TGDPO needs.
    let rewardModel: CausalLM?

    public init(model: CausalLM, tokenizer: Tokenizer, objective: PreferenceLoss.Config, lora: LoRA.Config?,
                lr: Double, weightDecay: Double, maxGradNorm: Double, seed: UInt64, rewardModel: CausalLM? = nil) throws {
        if objective.name == .tgdpo && rewardModel == nil {
            throw TrainingError("objective 'tgdpo' needs a frozen token-reward model: set model.reward_model")
        }
        if objective.name != .tgdpo && rewardModel != nil {
            throw TrainingError("model.reward_model is only used by objective 'tgdpo', not '\(objective.name.rawValue)'")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.loss = PreferenceLoss(objective)
        self.maxGradNorm = maxGradNorm
        self.rewardModel = rewardModel
        let (forward, params) = try ResponseForward.attach(model, lora: lora, seed: seed, reference: true)
        self.forward = forward
        optimizer = try AdamW(parameters: params, options: .init(lr: lr, weightDecay: weightDecay))
    }

    /// Both sides' inputs to the loss: logprobs (with gradients), reference logprobs, mask, and the
    /// per-token KL(π_ref ‖ π_θ) or reward-model logprobs when the loss uses them. Each distinct
    /// prompt runs once per model, and its chosen and rejected responses attend to its keys and
    /// values (gradients flow back into it through both).
    func sides(_ pairs: [PreferencePair]) throws -> (chosen: PreferenceLoss.Side, rejected: PreferenceLoss.Side) {
        let (unique, owner) = ResponseForward.distinct(pairs.map { tokenizer.encode($0.prompt) })
        let end = tokenizer.eosIds.first.map { [$0] } ?? []
        let needsKL = loss.config.inputs.contains(.kl)
        let policyPrefix = try model.sharedPrefix(unique)
        let refPrefix = try forward.withReference { try $0.sharedPrefix(unique) }
        let rmPrefix = try rewardModel.map { rm in try withNoGrad { try rm.sharedPrefix(unique) } }
        func side(_ key: KeyPath<PreferencePair, String>, _ w: KeyPath<TokenWeights, [Double]>, _ klw: KeyPath<TokenWeights, [Double]?>) throws -> PreferenceLoss.Side {
            let responses = pairs.map { tokenizer.encode($0[keyPath: key]) + end }
            if let empty = responses.firstIndex(where: \.isEmpty) {
                throw TrainingError("preference pair \(empty): the response is empty and the tokenizer has no end token")
            }
            let mask = padded(responses.map { [Double](repeating: 1, count: $0.count) }, device: model.device).values
            let targets = ResponseForward.batch(responses).0.unsqueezed(dim: -1).to(model.device)       // [N, R, 1]
            // Log-softmax over the vocabulary at each response position, [N, R, V].
            func logSoftmax(_ m: CausalLM, _ prefix: SharedPrefix) throws -> Tensor {
                let h = try ResponseForward.hidden(m, prefix: prefix, owner: owner, responses: responses)
                return m.logits(hidden: h).to(dtype: .float32).logSoftmax(dim: -1)
            }
            let policy = try logSoftmax(model, policyPrefix)
            let ref = try forward.withReference { try logSoftmax($0, refPrefix) }
            let kl = needsKL ? (ref.exp() * (ref - policy)).sum(dim: -1) : nil
            let rm = try rewardModel.map { rm in try withNoGrad { try logSoftmax(rm, rmPrefix!).gather(dim: -1, index: targets).squeezed(dim: -1) } }
            let (weights, klWeights) = loss.config.inputs.contains(.activationMasks)
                ? (try forward.withReference { try ActivationMasks.compute($0, prompts: owner.map { unique[$0] }, responses: responses) }, nil)
                : try tokenWeights(pairs, w, klw, endTokens: end.count)
            return PreferenceLoss.Side(logprobs: policy.gather(dim: -1, index: targets).squeezed(dim: -1),
                                       refLogprobs: ref.gather(dim: -1, index: targets).squeezed(dim: -1), mask: mask,
                                       weights: weights, kl: kl, klWeights: klWeights, rmLogprobs: rm,
                                       hallucinated: try labels(pairs, key == \PreferencePair.chosen ? \.chosen : \.rejected),
                                       revisionRewards: try revisionRewards(pairs, responses))
        }
        return (try side(\.chosen, \.chosen, \.chosenKL), try side(\.rejected, \.rejected, \.rejectedKL))
    }

    /// T-REG's r̂_t = σ(log π_ref(y_t | x_better) − log π_ref(y_t | x_worse)) − ½ for each token of
    /// `responses` (one side), `[N, R]`, when the loss reads them.
    func revisionRewards(_ pairs: [PreferencePair], _ responses: [[Int]]) throws -> Tensor? {
        guard loss.config.inputs.contains(.revisionRewards) else { return nil }
        let prompts = try pairs.enumerated().map { n, p -> (better: [Int], worse: [Int]) in
            guard let r = p.revision else { throw TrainingError("preference pair \(n): objective 'treg' needs its revision prompts (TaskData renders them)") }
            return (tokenizer.encode(r.better), tokenizer.encode(r.worse))
        }
        let lp = try forward.withReference { m in
            try ResponseForward.rowLogprobs(m, prompts: prompts.map(\.better) + prompts.map(\.worse), responses: responses + responses, microBatch: 8).logprobs
        }
        let n = responses.count
        let rows = (0..<n).map { i in zip(lp[i], lp[n + i]).map { b, w in 1 / (1 + Foundation.exp(w - b)) - 0.5 } }
        return padded(rows, device: model.device).values
    }

    /// One side's hallucination labels as a `[N]` tensor when the loss reads them (F-DPO).
    func labels(_ pairs: [PreferencePair], _ side: KeyPath<HallucinationLabels, Bool>) throws -> Tensor? {
        guard loss.config.inputs.contains(.hallucinated) else { return nil }
        let rows = try pairs.enumerated().map { n, p -> [Double] in
            guard let h = p.hallucinated else { throw TrainingError("preference pair \(n): objective 'fdpo' needs its labels ('h_w', 'h_l')") }
            return [h[keyPath: side] ? 1 : 0]
        }
        return padded(rows, device: model.device).values.squeezed(dim: 1)
    }

    /// One side's token weights (and SparsePO's KL masks, where the pairs give them) as `[N, R]`
    /// tensors when the loss reads them; the end token weighs 1. `TaskData.loadPairs` has checked
    /// that each pair has them, one per response token.
    func tokenWeights(_ pairs: [PreferencePair], _ w: KeyPath<TokenWeights, [Double]>, _ klw: KeyPath<TokenWeights, [Double]?>,
                      endTokens: Int) throws -> (Tensor?, Tensor?) {
        guard loss.config.inputs.contains(.weights) else { return (nil, nil) }
        let end = [Double](repeating: 1, count: endTokens)
        let rows = try pairs.enumerated().map { n, p -> TokenWeights in
            guard let weights = p.weights else {
                throw TrainingError("preference pair \(n): objective '\(loss.config.name.rawValue)' needs per-token weights ('chosen_weights', 'rejected_weights')")
            }
            return weights
        }
        let weights = padded(rows.map { $0[keyPath: w] + end }, device: model.device).values
        guard loss.config.name == .sparsepo, rows.contains(where: { $0[keyPath: klw] != nil }) else { return (weights, nil) }
        return (weights, padded(rows.map { ($0[keyPath: klw] ?? $0[keyPath: w]) + end }, device: model.device).values)
    }

    /// One optimizer step on `pairs`; returns the loss's metrics plus loss, grad norm and timing.
    /// Data-parallel, each rank backpropagates its contiguous share of the pairs with its loss
    /// scaled by share/all, so the summed gradients and metrics are those of the whole batch.
    public func step(_ pairs: [PreferencePair]) throws -> [String: Double] {
        guard !pairs.isEmpty else { throw TrainingError("train: a step needs at least one pair") }
        let start = DispatchTime.now().uptimeNanoseconds
        let mine = dataParallel.map { Array(pairs[$0.share(pairs.count)]) } ?? pairs
        let part = Double(mine.count) / Double(pairs.count)
        var metrics: [String: Double] = [:]
        try withTorchErrors {
            let (chosen, rejected) = try sides(mine)
            let (l, m, _) = try loss(chosen: chosen, rejected: rejected)
            (part * l).backward()
            // Means as this rank's share of the batch's, so that they add up over ranks.
            metrics = m.mapValues { $0 * part }
            metrics["pairs"] = m["pairs"]
            metrics["loss"] = try l.item() * part
            metrics = try OfflineUpdate.apply(optimizer, dataParallel: dataParallel, maxGradNorm: maxGradNorm, metrics)
        }
        return OfflineUpdate.timed(metrics, optimizer, since: start)
    }

    /// Held-out pairs: the share whose implicit reward margin β(Δ_w − Δ_l) is positive ("accuracy";
    /// a tie, as before any training, counts half) and the mean margin ("reward"), each over pairs
    /// with its 95% interval.
    public func evaluate(_ pairs: [PreferencePair]) throws -> EvalResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var margins = [Double]()
        for chunk in stride(from: 0, to: pairs.count, by: 8) {
            let part = Array(pairs[chunk..<Swift.min(pairs.count, chunk + 8)])
            try withTorchErrors {
                try withNoGrad {
                    // The implicit token rewards β·Δ_t the loss reports, summed per response.
                    let (chosen, rejected) = try sides(part)
                    let (_, _, rewards) = try loss(chosen: chosen, rejected: rejected)
                    margins += try (rewards.chosen.sum(dim: 1) - rewards.rejected.sum(dim: 1)).doubles()
                }
            }
        }
        return EvalResult(prompts: pairs.count, samplesPerPrompt: 1, reward: Estimate(margins),
                          accuracy: Estimate(margins.map { $0 > 0 ? 1 : $0 == 0 ? 0.5 : 0 }), passAtK: [:], responseLength: 0,
                          seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
