import Foundation

/// SPO-chain — "Segment Policy Optimization: Effective Segment-Level Credit Assignment in RL for
/// Large Language Models" (arXiv:2505.23564), ALGORITHMS.md §11.1.
/// Cut points c (the state before a low-probability token; −1 = the bare prompt) split a response
/// into segments; V(c) are Monte-Carlo values supplied in `segment_values`, and V(L−1) = R.
/// Every token takes the advantage of the next valued position at or after it:
///   segment (c_{k−1}, c_k] → V(c_k) − V(c_{k−1}),  last segment → R − V(c_last),
/// and the first segment gets 0 unless the first cut point is −1 (whose value is the baseline).
/// `prob_mask`: A_t = 0 where p_t > prob_threshold and weight_t = 1[p_t < prob_threshold].
/// `whiten`: whitening over the kept tokens of the batch (unbiased σ).
/// Reduces to GRPO-like training with one cut point at −1 valued V̂(x): A_i = R_i − V̂(x).
public enum SPOChain {
    public struct Params: Encodable, Equatable, Sendable {
        public var probThreshold = 0.9
        public var cutpointInterval = 5
        public var probMask = true
        public var whiten = true

        public init(probThreshold: Double = 0.9, cutpointInterval: Int = 5, probMask: Bool = true, whiten: Bool = true) {
            self.probThreshold = probThreshold; self.cutpointInterval = cutpointInterval
            self.probMask = probMask; self.whiten = whiten
        }

        init(_ r: ParamReader) throws {
            probThreshold = try r.value("prob_threshold", 0.9)
            cutpointInterval = try r.value("cutpoint_interval", 5)
            probMask = try r.value("prob_mask", true)
            whiten = try r.value("whiten", true)
            try r.check("prob_threshold", (0...1).contains(probThreshold), "must be in [0, 1], got \(probThreshold)")
            try r.check("cutpoint_interval", cutpointInterval >= 1, "must be >= 1, got \(cutpointInterval)")
        }

        enum CodingKeys: String, CodingKey {
            case probThreshold = "prob_threshold", cutpointInterval = "cutpoint_interval", probMask = "prob_mask", whiten
        }
    }

    /// The cut points to estimate values at: c = t − 1 for every token with probability below
    /// `threshold`, keeping every `interval`-th (c[::interval]). Rollouts sample the Monte-Carlo
    /// completions from these prefixes.
    public static func cutpoints(logprobs: [Double], threshold: Double = 0.9, interval: Int = 5) -> [Int] {
        let all = logprobs.indices.filter { Foundation.exp(logprobs[$0]) < threshold }.map { $0 - 1 }
        return stride(from: 0, to: all.count, by: Swift.max(1, interval)).map { all[$0] }
    }

    /// Raw segment advantages of one response (before the probability mask).
    static func advantages(length: Int, reward: Double, cuts: [Int], values: [Double]) -> [Double] {
        var valued: [(pos: Int, value: Double)] = zip(cuts, values).map { ($0, $1) }
        valued.append((length - 1, reward))
        var adv = [Double](repeating: 0, count: length)
        var previous: Double? = nil
        var start = 0
        for (pos, value) in valued {
            if pos < 0 { previous = value; continue }
            let a = previous.map { value - $0 } ?? 0
            for t in start...pos { adv[t] = a }
            start = pos + 1
            previous = value
        }
        return adv
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.probMask ? [.segmentValues, .logprobs] : [.segmentValues] }

        func validate(_ batch: CreditBatch) throws {
            let hint = "(cut points and their Monte-Carlo values; SPOChain.cutpoints computes the cut points)"
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() {
                    let at = here(batch, g, i)
                    guard let cuts = t.segments, let values = t.segmentValues else {
                        throw CreditError("\(at): method 'spo_chain' needs 'segments' and 'segment_values' \(hint)")
                    }
                    guard cuts.count == values.count else {
                        throw CreditError("\(at): 'segments' has \(cuts.count) cut points but 'segment_values' has \(values.count) values")
                    }
                    for (k, c) in cuts.enumerated() {
                        guard c >= -1, c <= t.count - 2 else {
                            throw CreditError("\(at): 'segments'[\(k)] = \(c) must be in [-1, \(t.count - 2)] (a cut point before a token of the response)")
                        }
                        if k > 0, c <= cuts[k - 1] {
                            throw CreditError("\(at): 'segments' must be strictly increasing ('segments'[\(k)] = \(c))")
                        }
                    }
                    if params.probMask, t.logprobs == nil {
                        throw CreditError("\(at): method 'spo_chain' with prob_mask needs 'logprobs'")
                    }
                }
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() where t.count > 0 {
                    var adv = SPOChain.advantages(length: t.count, reward: t.reward, cuts: t.segments!, values: t.segmentValues!)
                    if params.probMask {
                        let p = t.logprobs!.map { Foundation.exp($0) }
                        for k in adv.indices {
                            if p[k] > params.probThreshold { adv[k] = 0 }
                            result.weights[g][i][k] = p[k] < params.probThreshold ? 1 : 0
                        }
                    }
                    result.advantages[g][i] = adv
                }
            }
            if params.whiten {
                result.whiten(kind: .unbiased)
                if params.probMask { result.zeroUnweighted() }
            }
        }
    }
}

extension CreditResult {
    /// Sets the advantage of every token with weight 0 to 0 (they carry no gradient; keeps output tidy).
    mutating func zeroUnweighted() {
        for g in advantages.indices { for i in advantages[g].indices { for t in advantages[g][i].indices where weights[g][i][t] == 0 {
            advantages[g][i][t] = 0
        } } }
    }
}
