import Torch

/// Token-level preference losses on chosen/rejected pairs (ALGORITHMS.md §18). With
/// Δ_t = logp_θ − logp_ref per token, u = Σ_t Δ(y_w)_t − Σ_t Δ(y_l)_t, σ the sigmoid:
/// - `dpo` (arXiv:2305.18290): −log σ(β u)
/// - `ipo` (arXiv:2310.12036): (u − 1/(2β))², on summed log-ratios
/// - `tdpo1`/`tdpo2` (Token-level DPO, arXiv:2404.11999): with D = Σ_t KL(π_ref ‖ π_θ) per response,
///   −log σ(β(u − (D_l − D_w))) and −log σ(β(u − α(D_l − sg D_w)))
/// - `tgdpo` (arXiv:2506.14574): −log σ(Σ β(1 + αβΔ^rm_w)Δ_w − Σ β(1 − αβΔ^rm_l)Δ_l), Δ^rm from a
///   frozen token-reward model's `rm_logprobs`
/// - `sparsepo` (arXiv:2410.05102, UNVERIFIED): −log σ(βΣ m^u Δ_w − βΣ m^u Δ_l − β(Σ m^d KL_l − Σ m^d KL_w)),
///   m^u = `weights`, m^d = `kl_weights` (default: `weights`); in training the masks come from the
///   reference model's activations (`mask: activations`, MaPO) or the pair file (`mask: file`)
/// - `weighted_dpo` (cDPO, arXiv:2411.19943): −log σ(β(Σ w_w Δ_w − Σ w_l Δ_l)), weights default 1
/// - `fdpo` (F-DPO, arXiv:2601.03027; VectorInstitute/Factual-Preference-Alignment @8f66ee2
///   `FactualDPOTrainer.dpo_loss`): −log σ(β(u − λ(h_l − h_w))), h the responses' binary
///   hallucination labels and λ = `delta`; pairs whose chosen response is the hallucinated one are
///   swapped when the pair file is read (the authors' `flip_sample`), not here
/// - `treg` (T-REG, arXiv:2412.02685; PROPOSAL: the paper's method section and its code, wzhouad/T-REG,
///   were not reachable here, so this is the form three secondary summaries agree on): DPO plus
///   α·w·(L(y_w) + L(y_l)) with L(y) = −Σ_t β·r̂_t·log π_θ(y_t), r̂_t = σ(log π_ref(y_t | x_better) −
///   log π_ref(y_t | x_worse)) − ½ the self-generated token rewards (`revision_rewards`, from the
///   reference under two revision prompts), and w = sg σ(−βu), the weight DPO's own gradient carries
/// Every variant reduces to DPO when its extra terms are off. The implicit token reward of
/// "From r to Q*" (arXiv:2404.12358) is β·Δ_t; its sum is DPO's implicit reward.
public struct PreferenceLoss {
    public enum Name: String, Codable, Sendable, CaseIterable {
        case dpo, ipo, tdpo1, tdpo2, tgdpo, sparsepo
        case weightedDPO = "weighted_dpo"
        case fdpo, treg
    }

    /// Where SparsePO's token masks come from in training: `activations` (the authors' MaPO
    /// masks from the reference model's activations, the default) or `file` (the pair file's
    /// `chosen_weights` / `rejected_weights`, and optional `*_kl_weights`).
    public enum MaskSource: String, Codable, Sendable, CaseIterable { case activations, file }

    public struct Config: Codable, Equatable, Sendable {
        public var name: Name = .dpo
        public var beta = 0.1
        public var alpha = 0.5
        /// SparsePO only.
        public var mask: MaskSource = .activations
        /// F-DPO's margin λ (the official code's `delta`; 10 in its README's example), fdpo only.
        public var delta = 10.0
        /// T-REG's revision instructions, added to the prompt to score each response as a better and
        /// as a worse revision (treg only; the paper's own wording was not reachable).
        public var better = Self.betterInstruction
        public var worse = Self.worseInstruction
        public static let betterInstruction = "Revise your answer so that it is helpful, correct, coherent and concise."
        public static let worseInstruction = "Revise your answer so that it is unhelpful, incorrect, incoherent and verbose."

        public init(name: Name = .dpo, beta: Double = 0.1, alpha: Double = 0.5, mask: MaskSource = .activations, delta: Double = 10) {
            self.name = name; self.beta = beta; self.alpha = alpha; self.mask = mask; self.delta = delta
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case name, beta, alpha, mask, delta, better, worse }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(beta, forKey: .beta)
            try c.encode(alpha, forKey: .alpha)
            if name == .sparsepo { try c.encode(mask, forKey: .mask) }
            if name == .fdpo { try c.encode(delta, forKey: .delta) }
            if name == .treg {
                try c.encode(better, forKey: .better)
                try c.encode(worse, forKey: .worse)
            }
        }

        /// Whether an `objective` mapping selects a preference loss: it names one (`name: dpo`, …),
        /// a key the policy loss does not have.
        public static func isNamed(in decoder: Decoder) throws -> Bool {
            try decoder.container(keyedBy: AnyKey.self).contains(AnyKey(CodingKeys.name.stringValue))
        }

        public init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "objective")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let raw = try c.decodeIfPresent(String.self, forKey: .name), Name(rawValue: raw) == nil {
                let known = (Name.allCases.map(\.rawValue) + ["sft"]).map { "'\($0)'" }.joined(separator: ", ")
                throw ObjectiveError("objective: 'name' is '\(raw)'; expected one of \(known) (a policy loss has no name)")
            }
            name = try c.choice(.name, in: "objective") as Name? ?? .dpo
            beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? 0.1
            alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? 0.5
            mask = try c.choice(.mask, in: "objective") as MaskSource? ?? .activations
            guard beta > 0 else { throw ObjectiveError("objective: 'beta' must be > 0, got \(beta)") }
            if name != .sparsepo, c.contains(.mask) { throw ObjectiveError("objective: 'mask' is read by objective sparsepo only, not '\(name.rawValue)'") }
            delta = try c.decodeIfPresent(Double.self, forKey: .delta) ?? 10
            if name != .fdpo, c.contains(.delta) { throw ObjectiveError("objective: 'delta' is read by objective fdpo only, not '\(name.rawValue)'") }
            guard delta >= 0, delta.isFinite else { throw ObjectiveError("objective: 'delta' must be ≥ 0 and finite, got \(delta)") }
            better = try c.decodeIfPresent(String.self, forKey: .better) ?? Self.betterInstruction
            worse = try c.decodeIfPresent(String.self, forKey: .worse) ?? Self.worseInstruction
            for key in [CodingKeys.better, .worse] where name != .treg && c.contains(key) {
                throw ObjectiveError("objective: '\(key.rawValue)' is read by objective treg only, not '\(name.rawValue)'")
            }
            guard !better.isEmpty, !worse.isEmpty, better != worse else {
                throw ObjectiveError("objective: treg's 'better' and 'worse' revision instructions must be two different, non-empty texts")
            }
            if name == .treg, !(alpha >= 0 && alpha.isFinite) { throw ObjectiveError("objective: treg's 'alpha' must be ≥ 0 and finite, got \(alpha)") }
        }
    }

    /// One side (all chosen or all rejected responses) of a batch of pairs: `[P, T]` tensors.
    public struct Side {
        public var logprobs: Tensor
        public var refLogprobs: Tensor
        public var mask: Tensor
        /// Token weights (weighted_dpo) or reward masks m^u (sparsepo).
        public var weights: Tensor?
        /// Per-token KL(π_ref ‖ π_θ) over the full vocabulary (tdpo, sparsepo).
        public var kl: Tensor?
        /// KL masks m^d (sparsepo).
        public var klWeights: Tensor?
        /// A frozen token-reward model's log-probabilities (tgdpo).
        public var rmLogprobs: Tensor?
        /// Each response's hallucination label, 1 or 0, `[P]` (fdpo).
        public var hallucinated: Tensor?
        /// T-REG's self-generated token rewards r̂_t in [−½, ½] (treg).
        public var revisionRewards: Tensor?

        public init(logprobs: Tensor, refLogprobs: Tensor, mask: Tensor, weights: Tensor? = nil, kl: Tensor? = nil,
                    klWeights: Tensor? = nil, rmLogprobs: Tensor? = nil, hallucinated: Tensor? = nil, revisionRewards: Tensor? = nil) {
            self.logprobs = logprobs; self.refLogprobs = refLogprobs; self.mask = mask; self.weights = weights
            self.kl = kl; self.klWeights = klWeights; self.rmLogprobs = rmLogprobs; self.hallucinated = hallucinated
            self.revisionRewards = revisionRewards
        }

        /// β·Δ_t: the implicit token reward.
        func tokenRewards(_ beta: Double) -> Tensor { beta * (logprobs - refLogprobs.detached()) * mask }
    }

    public let config: Config

    public init(_ config: Config) { self.config = config }

    func check(_ side: Side, _ label: String) throws {
        let shape = side.logprobs.shape
        guard shape.count == 2, shape[0] > 0 else { throw ObjectiveError("objective: the batch has no pairs") }
        for (name, t) in [("ref_logprobs", side.refLogprobs), ("mask", side.mask), ("weights", side.weights), ("kl", side.kl),
                          ("kl_weights", side.klWeights), ("rm_logprobs", side.rmLogprobs), ("revision_rewards", side.revisionRewards)] as [(String, Tensor?)] {
            if let t, t.shape != shape { throw ObjectiveError("objective: \(label) '\(name)' has shape \(t.shape) but logprobs has \(shape)") }
        }
        let n = config.name, reads = config.inputs
        let uses: [(String, Bool, Bool)] = [
            // Activation masks arrive as the side's weights, whoever computed them.
            ("weights", side.weights != nil, reads.contains(.weights) || reads.contains(.activationMasks)),
            ("kl", side.kl != nil, reads.contains(.kl)),
            ("kl_weights", side.klWeights != nil, n == .sparsepo),
            ("rm_logprobs", side.rmLogprobs != nil, reads.contains(.rmLogprobs)),
            ("hallucinated", side.hallucinated != nil, reads.contains(.hallucinated)),
            ("revision_rewards", side.revisionRewards != nil, reads.contains(.revisionRewards)),
        ]
        if let h = side.hallucinated, h.shape != [shape[0]] {
            throw ObjectiveError("objective: \(label) 'hallucinated' has shape \(h.shape) but there are \(shape[0]) pairs")
        }
        for (field, given, used) in uses where given && !used {
            throw ObjectiveError("objective: \(label) '\(field)' is given but '\(n.rawValue)' does not use it")
        }
        if reads.contains(.kl) && side.kl == nil { throw ObjectiveError("objective: '\(n.rawValue)' needs \(label) 'kl'") }
        if reads.contains(.rmLogprobs) && side.rmLogprobs == nil { throw ObjectiveError("objective: 'tgdpo' needs \(label) 'rm_logprobs'") }
        if reads.contains(.hallucinated) && side.hallucinated == nil { throw ObjectiveError("objective: 'fdpo' needs \(label) 'hallucinated' (1 or 0 per response)") }
        if reads.contains(.revisionRewards) && side.revisionRewards == nil {
            throw ObjectiveError("objective: 'treg' needs \(label) 'revision_rewards' (r̂_t in [−0.5, 0.5] per token; training computes them from the reference under the revision prompts)")
        }
    }

    /// The mean loss over pairs, metrics, and each side's implicit token rewards.
    public func callAsFunction(chosen: Side, rejected: Side) throws
        -> (loss: Tensor, metrics: [String: Double], tokenRewards: (chosen: Tensor, rejected: Tensor))
    {
        try check(chosen, "chosen")
        try check(rejected, "rejected")
        guard chosen.logprobs.size(0) == rejected.logprobs.size(0) else {
            throw ObjectiveError("objective: \(chosen.logprobs.size(0)) chosen but \(rejected.logprobs.size(0)) rejected responses")
        }
        let beta = config.beta, alpha = config.alpha
        func delta(_ s: Side) -> Tensor { (s.logprobs - s.refLogprobs.detached()) * s.mask }
        func sum(_ x: Tensor) -> Tensor { x.sum(dim: 1) }       // [P]
        let dw = delta(chosen), dl = delta(rejected)
        let u = sum(dw) - sum(dl)
        let perPair: Tensor
        switch config.name {
        case .dpo:
            perPair = (-beta * u).softplus()
        case .ipo:
            perPair = (u - 1 / (2 * beta)).square()
        case .tdpo1, .tdpo2:
            let kw = sum(chosen.kl! * chosen.mask), kl = sum(rejected.kl! * rejected.mask)
            let margin = config.name == .tdpo1 ? kl - kw : alpha * (kl - kw.detached())
            perPair = (-beta * (u - margin)).softplus()
        case .tgdpo:
            let rw = beta * (chosen.rmLogprobs! - chosen.refLogprobs).detached()
            let rl = beta * (rejected.rmLogprobs! - rejected.refLogprobs).detached()
            let z = sum(beta * (1 + alpha * rw) * dw) - sum(beta * (1 - alpha * rl) * dl)
            perPair = (-z).softplus()
        case .sparsepo:
            let mw = chosen.weights ?? Tensor.ones(like: chosen.mask), ml = rejected.weights ?? Tensor.ones(like: rejected.mask)
            let dmw = chosen.klWeights ?? mw, dml = rejected.klWeights ?? ml
            let reward = beta * (sum(mw * dw) - sum(ml * dl))
            let klTerm = beta * (sum(dml * rejected.kl! * rejected.mask) - sum(dmw * chosen.kl! * chosen.mask))
            perPair = (-(reward - klTerm)).softplus()
        case .weightedDPO:
            let ww = chosen.weights ?? Tensor.ones(like: chosen.mask), wl = rejected.weights ?? Tensor.ones(like: rejected.mask)
            perPair = (-beta * (sum(ww * dw) - sum(wl * dl))).softplus()
        case .fdpo:
            perPair = (-beta * (u - config.delta * (rejected.hallucinated! - chosen.hallucinated!))).softplus()
        case .treg:
            // L(y) = −Σ β·r̂_t·log π_θ(y_t); w = σ(r_l − r_w) without gradient.
            func reg(_ s: Side) -> Tensor { -sum(beta * s.revisionRewards!.detached() * s.logprobs * s.mask) }
            perPair = (-beta * u).softplus() + alpha * (-beta * u).sigmoid().detached() * (reg(chosen) + reg(rejected))
        }
        let loss = perPair.mean()
        let rc = chosen.tokenRewards(beta), rr = rejected.tokenRewards(beta)
        var metrics: [String: Double] = [:]
        try withNoGrad {
            let cr = sum(rc), rj = sum(rr)
            metrics["chosen_reward"] = try cr.mean().item()
            metrics["rejected_reward"] = try rj.mean().item()
            metrics["reward_margin"] = try (cr - rj).mean().item()
            metrics["reward_accuracy"] = try (cr .> rj).to(dtype: cr.dtype).mean().item()
            metrics["pairs"] = Double(chosen.logprobs.size(0))
            // T-REG: the mean self-generated token reward of each side's tokens.
            for (name, side) in [("chosen", chosen), ("rejected", rejected)] {
                if let r = side.revisionRewards { metrics["revision_reward_\(name)_mean"] = try ((r * side.mask).sum() / side.mask.sum()).item() }
            }
        }
        return (loss, metrics, (rc.detached(), rr.detached()))
    }
}
