/// HICRA — hierarchy-aware credit for planning tokens (arXiv:2509.03646), ALGORITHMS.md §19:
///   A'_t = Â_t + alpha·|Â_t|·1[t is a planning token]
/// on GRPO advantages. Planning tokens are those inside an occurrence of any `grams` entry (token-id
/// n-grams of "strategic grams") plus each trajectory's explicit `planning` indices.
/// Reduces to GRPO with `alpha: 0` or when no planning token is found.
public enum HICRA {
    public struct Params: Encodable, Equatable, Sendable {
        public var grpo = GRPO.Params()
        public var alpha = 0.2
        public var grams: [[Int]] = []

        public init(grpo: GRPO.Params = .init(), alpha: Double = 0.2, grams: [[Int]] = []) {
            self.grpo = grpo; self.alpha = alpha; self.grams = grams
        }

        init(_ r: ParamReader) throws {
            grpo = try GRPO.Params(r)
            alpha = try r.value("alpha", 0.2)
            grams = try r.value("grams", [[Int]]())
            try r.check("grams", grams.allSatisfy { !$0.isEmpty }, "must not contain an empty n-gram")
        }

        enum CodingKeys: String, CodingKey { case alpha, grams }

        public func encode(to encoder: Encoder) throws {
            try grpo.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(alpha, forKey: .alpha)
            try c.encode(grams, forKey: .grams)
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

    struct Stage: CreditStage {
        let params: Params

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            var planning = 0, total = 0
            for (g, group) in batch.groups.enumerated() {
                for (i, t) in group.trajectories.enumerated() {
                    var mask = HICRA.planningMask(tokens: t.tokens, grams: params.grams)
                    for p in t.planning ?? [] { mask[p] = true }
                    for k in 0..<t.count {
                        total += 1
                        guard mask[k] else { continue }
                        planning += 1
                        let a = result.advantages[g][i][k]
                        result.advantages[g][i][k] = a + params.alpha * Swift.abs(a)
                    }
                }
            }
            result.diagnostics["hicra_planning_token_fraction"] = total == 0 ? 0 : Double(planning) / Double(total)
        }
    }
}
