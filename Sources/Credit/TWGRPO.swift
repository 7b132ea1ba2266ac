import Foundation

/// TW-GRPO — "Reinforcing Video Reasoning with Focused Thinking" (arXiv:2505.24718), ALGORITHMS.md
/// §16: token weights from intra-group divergence, on GRPO advantages with eps 1e-4.
/// With per-position scores K_t of a group (`position_scores`, see `positionScores`):
///   K̂_t = (K_t − min K)/(max K − min K + 1e-8),   w_t = 1 + (alpha − 1)·K̂_t ∈ [1, alpha],
/// shared by every response of the group at position t. Reduces to GRPO with `alpha: 1`.
public enum TWGRPO {
    public struct Params: Encodable, Equatable, Sendable {
        public var grpo = GRPO.Params(eps: 1e-4)
        public var alpha = 1.4

        public init(grpo: GRPO.Params = GRPO.Params(eps: 1e-4), alpha: Double = 1.4) {
            self.grpo = grpo
            self.alpha = alpha
        }

        init(_ r: ParamReader) throws {
            grpo = try GRPO.Params(r, eps: 1e-4)
            alpha = try r.value("alpha", 1.4)
            try r.check("alpha", alpha >= 1, "must be >= 1, got \(alpha)")
        }

        enum CodingKeys: String, CodingKey { case alpha }

        public func encode(to encoder: Encoder) throws {
            try grpo.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(alpha, forKey: .alpha)
        }
    }

    /// K_t from each response's full-vocabulary log-distributions `[G][T_i][V]`: positions past a
    /// response's end use the uniform distribution; m_t = mean_i ℓ_{i,t};
    /// D_{i,t} = Σ_v (e^{d} − d − 1) with d = clamp(m_t − ℓ_{i,t}, −11, 11); K_t = mean_i D_{i,t}.
    public static func positionScores(logDistributions: [[[Double]]]) -> [Double] {
        let g = logDistributions.count
        guard g > 0, let vocab = logDistributions.lazy.compactMap({ $0.first?.count }).first else { return [] }
        let length = logDistributions.map(\.count).max()!
        let uniform = [Double](repeating: -Foundation.log(Double(vocab)), count: vocab)
        return (0..<length).map { t in
            let rows = logDistributions.map { t < $0.count ? $0[t] : uniform }
            var mean = [Double](repeating: 0, count: vocab)
            for row in rows { for v in 0..<vocab { mean[v] += row[v] / Double(g) } }
            let total = rows.reduce(0.0) { acc, row in
                acc + (0..<vocab).reduce(0.0) { s, v in
                    let d = Swift.min(11, Swift.max(-11, mean[v] - row[v]))
                    return s + Foundation.exp(d) - d - 1
                }
            }
            return total / Double(g)
        }
    }

    struct Stage: CreditStage {
        let alpha: Double
        var inputs: Set<CreditInput> { alpha != 1 ? [.positionScores] : [] }

        func validate(_ batch: CreditBatch) throws {
            guard alpha != 1 else { return }
            for group in batch.groups {
                let longest = group.trajectories.map(\.count).max() ?? 0
                guard let k = group.positionScores else {
                    throw CreditError("group '\(group.id)': method 'tw_grpo' needs 'position_scores'")
                }
                guard k.count >= longest else {
                    throw CreditError("group '\(group.id)': 'position_scores' has \(k.count) values but the longest response has \(longest) tokens")
                }
                if let bad = k.firstIndex(where: { !$0.isFinite }) {
                    throw CreditError("group '\(group.id)': 'position_scores'[\(bad)] is not finite (\(k[bad]))")
                }
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            guard alpha != 1 else { return }
            for (g, group) in batch.groups.enumerated() {
                let k = group.positionScores!
                guard let lo = k.min(), let hi = k.max() else { continue }
                for (i, t) in group.trajectories.enumerated() {
                    for p in 0..<t.count {
                        result.weights[g][i][p] *= 1 + (alpha - 1) * (k[p] - lo) / (hi - lo + 1e-8)
                    }
                }
            }
        }
    }
}
