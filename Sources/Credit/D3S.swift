import Foundation

/// D³S — "Dynamic Dual-Level Down-Sampling" (arXiv:2509.22115), ALGORITHMS.md §13, applied on top
/// of any `base` method's advantages. No code is released; this follows the paper's §3 equations as
/// transcribed by secondary sources (the method sections were not readable here).
/// - Sample level: keep m = ⌈κ_s·N⌉ trajectories maximising the (population) variance of their
///   advantages (a trajectory's advantage: the mean over its tokens), over the whole batch
///   (`sample_scope: batch`, the paper's cross-group selection, N = the batch's trajectories) or
///   within each group (`group`, the paper's intra-group variant D3S-I, N = G). The best subset is
///   always the j largest ∪ the m − j smallest for some j; every j is tried, ties go to the smaller j.
/// - Token level: score |A_t|·H_t; keep the top ⌈κ_t·n⌉ of the n tokens still kept, over the batch
///   (`token_scope: batch`) or per trajectory (`sequence`); tokens with score 0 are never kept.
/// - Schedule with training progress p from κ₀ (`sample_keep` / `token_keep`) to κ₁
///   (`sample_keep_final` / `token_keep_final`, default 1: keep everything at the end):
///   κ₀ (`constant`), κ₀ + (κ₁ − κ₀)p (`linear`, the paper's), κ₀ + (κ₁ − κ₀)(1 − cos πp)/2 (`cosine`).
/// Dropped trajectories and tokens get weight 0; advantages are those of the base, computed on the
/// full group. Reduces to the base method with `sample_keep: 1` and `token_keep: 1`.
public enum D3S {
    public enum Schedule: String, Codable, Sendable, CaseIterable { case constant, linear, cosine }
    public enum Scope: String, Codable, Sendable, CaseIterable { case batch, sequence }
    public enum SampleScope: String, Codable, Sendable, CaseIterable { case batch, group }

    public struct Params: Encodable, Equatable, Sendable {
        public var base: CreditConfig = .grpo(.init())
        public var sampleKeep = 1.0
        public var tokenKeep = 1.0
        public var sampleKeepFinal = 1.0
        public var tokenKeepFinal = 1.0
        public var schedule: Schedule = .constant
        public var sampleScope: SampleScope = .batch
        public var tokenScope: Scope = .batch

        public init(base: CreditConfig = .grpo(.init()), sampleKeep: Double = 1, tokenKeep: Double = 1,
                    sampleKeepFinal: Double = 1, tokenKeepFinal: Double = 1, schedule: Schedule = .constant,
                    sampleScope: SampleScope = .batch, tokenScope: Scope = .batch) {
            self.base = base; self.sampleKeep = sampleKeep; self.tokenKeep = tokenKeep
            self.sampleKeepFinal = sampleKeepFinal; self.tokenKeepFinal = tokenKeepFinal
            self.schedule = schedule; self.sampleScope = sampleScope; self.tokenScope = tokenScope
        }

        init(_ r: ParamReader) throws {
            base = try r.config("base", .grpo(.init()))
            if case .d3s = base { throw CreditError("method 'd3s': param 'base' cannot itself be 'd3s'") }
            sampleKeep = try r.value("sample_keep", 1.0)
            tokenKeep = try r.value("token_keep", 1.0)
            sampleKeepFinal = try r.value("sample_keep_final", 1.0)
            tokenKeepFinal = try r.value("token_keep_final", 1.0)
            schedule = try r.choice("schedule", Schedule.constant)
            sampleScope = try r.choice("sample_scope", SampleScope.batch)
            tokenScope = try r.choice("token_scope", Scope.batch)
            for (name, v) in [("sample_keep", sampleKeep), ("token_keep", tokenKeep), ("sample_keep_final", sampleKeepFinal),
                              ("token_keep_final", tokenKeepFinal)] {
                try r.check(name, v > 0 && v <= 1, "must be in (0, 1], got \(v)")
            }
            // An end point the constant schedule never reaches would be accepted and ignored.
            try r.check("sample_keep_final", schedule != .constant || sampleKeepFinal == 1, "is used by the linear and cosine schedules only (schedule is 'constant')")
            try r.check("token_keep_final", schedule != .constant || tokenKeepFinal == 1, "is used by the linear and cosine schedules only (schedule is 'constant')")
        }

        enum CodingKeys: String, CodingKey {
            case base, sampleKeep = "sample_keep", tokenKeep = "token_keep", sampleKeepFinal = "sample_keep_final"
            case tokenKeepFinal = "token_keep_final", schedule, sampleScope = "sample_scope", tokenScope = "token_scope"
        }

        func keep(_ k0: Double, to k1: Double, progress p: Double) -> Double {
            switch schedule {
            case .constant: k0
            case .linear: k0 + (k1 - k0) * p
            case .cosine: k0 + (k1 - k0) * (1 - Foundation.cos(Double.pi * p)) / 2
            }
        }
    }

    /// Indices of the m values whose population variance is largest.
    public static func selectMaxVariance(_ a: [Double], keep m: Int) -> [Int] {
        let order = a.indices.sorted { a[$0] != a[$1] ? a[$0] < a[$1] : $0 < $1 }
        let m = Swift.min(Swift.max(m, 0), a.count)
        var best: [Int] = [], bestVar = -Double.infinity
        for j in 0...m {
            let chosen = Array(order.suffix(j)) + Array(order.prefix(m - j))
            let v = Stats.variance(chosen.map { a[$0] })
            if v > bestVar * (1 + 1e-12) + 1e-300 || best.isEmpty { best = chosen; bestVar = v }
        }
        return best.sorted()
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.tokenKeep < 1 ? [.entropies] : [] }

        func validate(_ batch: CreditBatch) throws {
            if params.tokenKeep < 1 { try Validation.require(batch, "d3s", "entropies (for token_keep < 1)") { $0.entropies != nil } }
        }

        /// Zeroes the weights of the trajectories outside the max-variance subset of each pool (the
        /// batch, or each group).
        func dropSamples(_ batch: CreditBatch, keep ks: Double, _ result: inout CreditResult) {
            let pools: [[(g: Int, i: Int)]] = params.sampleScope == .batch
                ? [batch.allIndices]
                : batch.groups.indices.map { g in batch.groups[g].trajectories.indices.map { (g, $0) } }
            for pool in pools {
                let scalar = pool.map { result.advantages[$0.g][$0.i].isEmpty ? 0 : Stats.mean(result.advantages[$0.g][$0.i]) }
                let m = Int((ks * Double(pool.count)).rounded(.up))
                let kept = Set(D3S.selectMaxVariance(scalar, keep: m))
                for (k, at) in pool.enumerated() where !kept.contains(k) {
                    for t in result.weights[at.g][at.i].indices { result.weights[at.g][at.i][t] = 0 }
                }
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let ks = params.keep(params.sampleKeep, to: params.sampleKeepFinal, progress: batch.progress)
            let kt = params.keep(params.tokenKeep, to: params.tokenKeepFinal, progress: batch.progress)
            result.diagnostics["d3s_sample_keep"] = ks
            result.diagnostics["d3s_token_keep"] = kt
            if ks < 1 { dropSamples(batch, keep: ks, &result) }
            guard kt < 1 else { return }
            // Candidate tokens: still weighted, with a positive score.
            var candidates: [[(g: Int, i: Int, t: Int, score: Double)]] = []
            var current: [(g: Int, i: Int, t: Int, score: Double)] = []
            for (g, group) in batch.groups.enumerated() {
                for (i, traj) in group.trajectories.enumerated() {
                    for t in 0..<traj.count where result.weights[g][i][t] > 0 {
                        current.append((g, i, t, Swift.abs(result.advantages[g][i][t]) * traj.entropies![t]))
                    }
                    if params.tokenScope == .sequence { candidates.append(current); current = [] }
                }
            }
            if params.tokenScope == .batch { candidates.append(current) }
            for pool in candidates {
                let quota = Int((kt * Double(pool.count)).rounded(.up))
                let ranked = pool.indices.sorted { pool[$0].score != pool[$1].score ? pool[$0].score > pool[$1].score : $0 < $1 }
                for (rank, k) in ranked.enumerated() where rank >= quota || pool[k].score <= 0 {
                    result.weights[pool[k].g][pool[k].i][pool[k].t] = 0
                }
            }
        }
    }
}
