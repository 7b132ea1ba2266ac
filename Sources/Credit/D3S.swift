import Foundation

/// D³S — "Dynamic Dual-Level Down-Sampling" (arXiv:2509.22115), ALGORITHMS.md §13, applied on top
/// of any `base` method's advantages.
/// - Sample level: per group keep m = ⌈κ_s·G⌉ trajectories maximising the (population) variance of
///   their advantages (a trajectory's advantage: the mean over its tokens). The best subset is always
///   the j largest ∪ the m − j smallest for some j; every j is tried, ties go to the smaller j.
/// - Token level: score |A_t|·H_t; keep the top ⌈κ_t·n⌉ of the n tokens still kept, over the batch
///   (`token_scope: batch`) or per trajectory (`sequence`); tokens with score 0 are never kept.
/// - Schedule with training progress p: κ = κ₀ (`constant`), κ₀ + (1 − κ₀)p (`linear`),
///   κ₀ + (1 − κ₀)(1 − cos πp)/2 (`cosine`), κ₀ = `sample_keep` / `token_keep`.
/// Dropped trajectories and tokens get weight 0; advantages are those of the base, computed on the
/// full group. Reduces to the base method with `sample_keep: 1` and `token_keep: 1`.
public enum D3S {
    public enum Schedule: String, Codable, Sendable, CaseIterable { case constant, linear, cosine }
    public enum Scope: String, Codable, Sendable, CaseIterable { case batch, sequence }

    public struct Params: Encodable, Equatable, Sendable {
        public var base: CreditConfig = .grpo(.init())
        public var sampleKeep = 1.0
        public var tokenKeep = 1.0
        public var schedule: Schedule = .constant
        public var tokenScope: Scope = .batch

        public init(base: CreditConfig = .grpo(.init()), sampleKeep: Double = 1, tokenKeep: Double = 1,
                    schedule: Schedule = .constant, tokenScope: Scope = .batch) {
            self.base = base; self.sampleKeep = sampleKeep; self.tokenKeep = tokenKeep
            self.schedule = schedule; self.tokenScope = tokenScope
        }

        init(_ r: ParamReader) throws {
            base = try r.config("base", .grpo(.init()))
            if case .d3s = base { throw CreditError("method 'd3s': param 'base' cannot itself be 'd3s'") }
            sampleKeep = try r.value("sample_keep", 1.0)
            tokenKeep = try r.value("token_keep", 1.0)
            schedule = try r.choice("schedule", Schedule.constant)
            tokenScope = try r.choice("token_scope", Scope.batch)
            try r.check("sample_keep", sampleKeep > 0 && sampleKeep <= 1, "must be in (0, 1], got \(sampleKeep)")
            try r.check("token_keep", tokenKeep > 0 && tokenKeep <= 1, "must be in (0, 1], got \(tokenKeep)")
        }

        enum CodingKeys: String, CodingKey {
            case base, sampleKeep = "sample_keep", tokenKeep = "token_keep", schedule, tokenScope = "token_scope"
        }

        func keep(_ k0: Double, progress p: Double) -> Double {
            switch schedule {
            case .constant: k0
            case .linear: k0 + (1 - k0) * p
            case .cosine: k0 + (1 - k0) * (1 - Foundation.cos(Double.pi * p)) / 2
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

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            let ks = params.keep(params.sampleKeep, progress: batch.progress)
            let kt = params.keep(params.tokenKeep, progress: batch.progress)
            result.diagnostics["d3s_sample_keep"] = ks
            result.diagnostics["d3s_token_keep"] = kt
            if ks < 1 {
                for (g, group) in batch.groups.enumerated() {
                    let scalar = result.advantages[g].map { $0.isEmpty ? 0 : Stats.mean($0) }
                    let m = Int((ks * Double(group.trajectories.count)).rounded(.up))
                    let kept = Set(D3S.selectMaxVariance(scalar, keep: m))
                    for i in group.trajectories.indices where !kept.contains(i) {
                        for t in result.weights[g][i].indices { result.weights[g][i][t] = 0 }
                    }
                }
            }
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
