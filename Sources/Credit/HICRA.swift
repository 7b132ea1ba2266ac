/// HICRA — hierarchy-aware credit for planning tokens (arXiv:2509.03646), ALGORITHMS.md §19:
///   A'_t = Â_t + alpha·|Â_t|·1[t is amplified]
/// on GRPO advantages Â. Amplified tokens are the union of
/// - planning tokens: inside an occurrence of any `grams` entry (token-id n-grams of "strategic
///   grams"), plus each trajectory's explicit `planning` indices;
/// - the entropy branch of the authors' verl recipe (as quoted by the TRL port, huggingface/trl
///   PR #4997 @31b5fb7, `modify_advantages_hicra`): in a response with Â > 0 that is longer than
///   its group's mean length, the tokens whose entropy is strictly above the response's
///   `entropy_top` quantile threshold sorted(H)[⌊(1 − entropy_top)·n⌋] (`entropy_top: 0` turns it off).
/// Groups with no response of positive advantage are left as GRPO (the recipe skips them).
/// Reduces to GRPO with `alpha: 0`, or when no token is amplified.
public enum HICRA {
    public struct Params: Encodable, Equatable, Sendable {
        public var grpo = GRPO.Params()
        public var alpha = 0.2
        public var grams: [[Int]] = []
        public var entropyTop = 0.3

        public init(grpo: GRPO.Params = .init(), alpha: Double = 0.2, grams: [[Int]] = [], entropyTop: Double = 0.3) {
            self.grpo = grpo; self.alpha = alpha; self.grams = grams; self.entropyTop = entropyTop
        }

        init(_ r: ParamReader) throws {
            grpo = try GRPO.Params(r)
            alpha = try r.value("alpha", 0.2)
            grams = try r.value("grams", [[Int]]())
            entropyTop = try r.value("entropy_top", 0.3)
            try r.check("grams", grams.allSatisfy { !$0.isEmpty }, "must not contain an empty n-gram")
            try r.check("entropy_top", (0..<1).contains(entropyTop), "must be in [0, 1), got \(entropyTop)")
        }

        enum CodingKeys: String, CodingKey { case alpha, grams, entropyTop = "entropy_top" }

        public func encode(to encoder: Encoder) throws {
            try grpo.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(alpha, forKey: .alpha)
            try c.encode(grams, forKey: .grams)
            try c.encode(entropyTop, forKey: .entropyTop)
        }
    }

    /// Whether each token lies inside an occurrence of one of `grams`.
    public static func planningMask(tokens: [Int], grams: [[Int]]) -> [Bool] {
        var mask = [Bool](repeating: false, count: tokens.count)
        for gram in grams where !gram.isEmpty && gram.count <= tokens.count {
            for start in 0...(tokens.count - gram.count) where tokens[start] == gram[0] {
                if tokens[start..<(start + gram.count)].elementsEqual(gram) {
                    for k in start..<(start + gram.count) { mask[k] = true }
                }
            }
        }
        return mask
    }

    /// The tokens whose entropy is strictly above sorted(H)[⌊(1 − top)·n⌋].
    public static func highEntropyMask(_ entropies: [Double], top: Double) -> [Bool] {
        guard !entropies.isEmpty else { return [] }
        let sorted = entropies.sorted()
        let k = Swift.min(Swift.max(Int((1 - top) * Double(sorted.count)), 0), sorted.count - 1)
        return entropies.map { $0 > sorted[k] }
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.entropyTop > 0 ? [.entropies] : [] }

        func validate(_ batch: CreditBatch) throws {
            if params.entropyTop > 0 {
                try Validation.require(batch, "hicra", "entropies (for entropy_top > 0)") { $0.entropies != nil }
            }
        }

        /// The amplified tokens of group `g`'s trajectories, and how many came from entropy.
        func amplified(_ group: Group, _ advantages: [[Double]]) -> (masks: [[Bool]], entropyTokens: Int) {
            let lengths = group.trajectories.map { Double($0.count) }
            let meanLength = lengths.reduce(0, +) / Double(Swift.max(lengths.count, 1))
            var entropyTokens = 0
            let masks = group.trajectories.enumerated().map { i, t -> [Bool] in
                var mask = HICRA.planningMask(tokens: t.tokens, grams: params.grams)
                for p in t.planning ?? [] { mask[p] = true }
                let a = advantages[i].first ?? 0
                if params.entropyTop > 0, a > 0, lengths[i] > meanLength {
                    for (k, high) in HICRA.highEntropyMask(t.entropies!, top: params.entropyTop).enumerated() where high {
                        if !mask[k] { entropyTokens += 1 }
                        mask[k] = true
                    }
                }
                return mask
            }
            return (masks, entropyTokens)
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            var marked = 0, fromEntropy = 0, total = 0
            for (g, group) in batch.groups.enumerated() {
                total += group.trajectories.reduce(0) { $0 + $1.count }
                guard result.advantages[g].contains(where: { ($0.first ?? 0) > 0 }) else { continue }
                let (masks, entropyTokens) = amplified(group, result.advantages[g])
                fromEntropy += entropyTokens
                for (i, mask) in masks.enumerated() {
                    for (k, on) in mask.enumerated() where on {
                        marked += 1
                        let a = result.advantages[g][i][k]
                        result.advantages[g][i][k] = a + params.alpha * Swift.abs(a)
                    }
                }
            }
            result.diagnostics["hicra_amplified_token_fraction"] = total == 0 ? 0 : Double(marked) / Double(total)
            result.diagnostics["hicra_entropy_token_fraction"] = total == 0 ? 0 : Double(fromEntropy) / Double(total)
        }
    }
}
