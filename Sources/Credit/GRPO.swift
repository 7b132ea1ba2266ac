/// GRPO — "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models"
/// (arXiv:2402.03300), outcome supervision, ALGORITHMS.md §2 and §1.4:
///   Â_i = (R_i − mean_G R) / (std_G R + eps)   for every token of response i.
/// `std_normalize: false` is Dr. GRPO (arXiv:2503.20783, §3): Â_i = R_i − mean_G R.
/// `scale: batch` divides by the std of every reward in the batch instead of the group's.
/// A one-response group has no baseline: mean 0, std 1, so Â = R (as verl).
public enum GRPO {
    public enum Scale: String, Codable, Sendable, CaseIterable { case group, batch }

    public struct Params: Encodable, Equatable, Sendable {
        public var stdNormalize = true
        public var std: StdKind = .unbiased
        public var eps = 1e-6
        public var scale: Scale = .group

        public init(stdNormalize: Bool = true, std: StdKind = .unbiased, eps: Double = 1e-6, scale: Scale = .group) {
            self.stdNormalize = stdNormalize; self.std = std; self.eps = eps; self.scale = scale
        }

        init(_ r: ParamReader, eps defaultEps: Double = 1e-6) throws {
            stdNormalize = try r.value("std_normalize", true)
            std = try r.choice("std", StdKind.unbiased)
            eps = try r.value("eps", defaultEps)
            scale = try r.choice("scale", Scale.group)
            try r.check("eps", eps >= 0, "must be >= 0, got \(eps)")
        }

        enum CodingKeys: String, CodingKey { case stdNormalize = "std_normalize", std, eps, scale }
    }

    /// Scalar advantage of every trajectory, group by group.
    static func advantages(_ batch: CreditBatch, _ p: Params) -> [[Double]] {
        let batchStd = Stats.std(batch.groups.flatMap { $0.trajectories.map(\.reward) }, p.std)
        return batch.groups.map { group in
            let r = group.trajectories.map(\.reward)
            guard r.count > 1 else { return r }
            let mean = Stats.mean(r)
            guard p.stdNormalize else { return r.map { $0 - mean } }
            let sd = p.scale == .group ? Stats.std(r, p.std) : batchStd
            return r.map { ($0 - mean) / (sd + p.eps) }
        }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { [] }
        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let adv = GRPO.advantages(batch, params)
            for g in adv.indices { for i in adv[g].indices { result.fill(g, i, adv[g][i]) } }
        }
    }
}

/// RLOO — "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
/// Feedback in LLMs" (Ahmadian et al., arXiv:2402.14740), ALGORITHMS.md §5, leave-one-out baseline:
///   A_i = R_i − (1/(G−1)) Σ_{j≠i} R_j = G/(G−1)·(R_i − mean_G R);   G = 1: A = R.
/// Reduces to GRPO without std normalisation up to the factor G/(G−1).
public enum RLOO {
    public struct Params: Encodable, Equatable, Sendable {
        public init() {}
        init(_ r: ParamReader) throws {}
    }

    static func advantages(_ batch: CreditBatch) -> [[Double]] {
        batch.groups.map { group in
            let r = group.trajectories.map(\.reward)
            guard r.count > 1 else { return r }
            let n = Double(r.count), mean = Stats.mean(r)
            return r.map { n / (n - 1) * ($0 - mean) }
        }
    }

    struct Stage: CreditStage {
        var inputs: Set<CreditInput> { [] }
        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let adv = RLOO.advantages(batch)
            for g in adv.indices { for i in adv[g].indices { result.fill(g, i, adv[g][i]) } }
        }
    }
}
