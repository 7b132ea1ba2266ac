/// TEMPO — "Exploiting Tree Structure for Credit Assignment in RL Training of LLMs"
/// (arXiv:2509.18314), ALGORITHMS.md §10. The group's responses form a prefix tree (Prefix-to-Tree);
/// V(s) is the mean outcome z of the responses through prefix s; at branch tokens a TD term is added
/// to GRPO's advantage:
///   A_{i,t} = Â_i + td_weight · b_{i,t} · (V(s_{i,t+1}) − V(s_{i,t}))
/// with b_{i,t} = 1 iff node s_{i,t} has ≥ 2 continuations (one response ending there counts as one).
/// `value_source: normalized` (the default) uses z = Â_i, so with GRPO's defaults
///   A_{i,t} = (R_i − μ_G + V_R(y_≤t) − V_R(y_<t)) / (σ_G + 1e-6),
/// exactly the authors' `compute_tempo_outcome_advantage` (fatebreaker/tempo @0a1c273,
/// verl/trainer/ppo/core_algos.py; `std_normalize: false` is its no-std branch); `raw` uses z = R_i,
/// adding the TD term unscaled (the reading of the paper's equation). The GRPO params set Â. One
/// departure: a one-response group keeps GRPO's rule (Â = R), where the official code gets NaN.
/// Reduces to GRPO at every non-branch token, and everywhere with `td_weight: 0`, a one-response
/// group (a chain: no branches) or equal rewards (every V equal, so every δ = 0).
public enum TEMPO {
    public enum ValueSource: String, Codable, Sendable, CaseIterable { case raw, normalized }

    public struct Params: Encodable, Equatable, Sendable {
        public var grpo = GRPO.Params()
        public var valueSource: ValueSource = .normalized
        public var tdWeight = 1.0

        public init(grpo: GRPO.Params = .init(), valueSource: ValueSource = .normalized, tdWeight: Double = 1) {
            self.grpo = grpo; self.valueSource = valueSource; self.tdWeight = tdWeight
        }

        init(_ r: ParamReader) throws {
            grpo = try GRPO.Params(r)
            valueSource = try r.choice("value_source", ValueSource.normalized)
            tdWeight = try r.value("td_weight", 1.0)
        }

        enum CodingKeys: String, CodingKey { case valueSource = "value_source", tdWeight = "td_weight" }

        public func encode(to encoder: Encoder) throws {
            try grpo.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(valueSource, forKey: .valueSource)
            try c.encode(tdWeight, forKey: .tdWeight)
        }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { [] }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let base = GRPO.advantages(batch, params.grpo)
            var branchTokens = 0, total = 0
            for (g, group) in batch.groups.enumerated() {
                let tree = PrefixTree(group.trajectories.map(\.tokens))
                let z = params.valueSource == .raw ? group.trajectories.map(\.reward) : base[g]
                for i in group.trajectories.indices {
                    let (sizes, means) = tree.nodeStatistics(of: i, values: z)
                    for t in 0..<group.trajectories[i].count {
                        total += 1
                        var a = base[g][i]
                        if sizes[t + 1] < sizes[t] {
                            branchTokens += 1
                            a += params.tdWeight * (means[t + 1] - means[t])
                        }
                        result.advantages[g][i][t] = a
                    }
                }
            }
            result.diagnostics["tempo_branch_token_fraction"] = total == 0 ? 0 : Double(branchTokens) / Double(total)
        }
    }
}
