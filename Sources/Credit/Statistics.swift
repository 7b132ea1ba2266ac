import Foundation

/// How a standard deviation is normalised: "unbiased" divides by n − 1 (Bessel), "biased" by n.
public enum StdKind: String, Codable, Sendable, CaseIterable { case unbiased, biased }

enum Stats {
    /// Mean shifted by the first value: exact when every value is equal (so equal rewards give
    /// advantages of exactly 0), and less cancellation than a plain sum otherwise.
    static func mean(_ x: [Double]) -> Double {
        guard let x0 = x.first else { return 0 }
        return x0 + x.reduce(0) { $0 + ($1 - x0) } / Double(x.count)
    }

    /// Weighted mean Σ wᵢxᵢ / Σ wᵢ, shifted like `mean`; 0 when the weights sum to 0.
    static func weightedMean(_ x: [Double], _ w: [Double]) -> Double {
        let total = w.reduce(0, +)
        guard let x0 = x.first, total > 0 else { return 0 }
        return x0 + zip(x, w).reduce(0) { $0 + $1.1 * ($1.0 - x0) } / total
    }

    /// Standard deviation; 0 when there are too few values for the chosen normaliser.
    static func std(_ x: [Double], _ kind: StdKind) -> Double {
        let n = Double(x.count)
        let dof = kind == .unbiased ? n - 1 : n
        guard dof > 0 else { return 0 }
        let m = mean(x)
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / dof).squareRoot()
    }

    /// Population variance.
    static func variance(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return 0 }
        let m = mean(x)
        return x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count)
    }

    /// The q-quantile with "nearest" interpolation (as torch.quantile); 0 for an empty set.
    static func quantileNearest(_ x: [Double], _ q: Double) -> Double {
        guard !x.isEmpty else { return 0 }
        let s = x.sorted()
        let pos = q * Double(s.count - 1)
        // torch rounds half to even for "nearest".
        let idx = Int(pos.rounded(.toNearestOrEven))
        return s[Swift.min(Swift.max(idx, 0), s.count - 1)]
    }

    /// Discounted right-to-left sum: out[t] = r[t] + γ·out[t+1].
    static func discountedReturns(_ r: [Double], gamma: Double) -> [Double] {
        var out = r
        var acc = 0.0
        for t in stride(from: r.count - 1, through: 0, by: -1) {
            acc = r[t] + gamma * acc
            out[t] = acc
        }
        return out
    }
}

extension CreditResult {
    /// Whitens the advantages of tokens with weight > 0 (or of all tokens when none has) over the
    /// whole batch: (A − μ)/sqrt(var + 1e-8) with the given variance normaliser, as `masked_whiten`
    /// in verl, TRL and SPO's trainer (torch.rsqrt(var + 1e-8)).
    mutating func whiten(kind: StdKind, subtractMeanOnly: Bool = false) {
        var selected = [Double]()
        for g in advantages.indices { for i in advantages[g].indices { for t in advantages[g][i].indices where weights[g][i][t] > 0 {
            selected.append(advantages[g][i][t])
        } } }
        let useAll = selected.isEmpty
        if useAll { selected = advantages.flatMap { $0.flatMap { $0 } } }
        guard !selected.isEmpty else { return }
        let mu = Stats.mean(selected)
        let sd = Stats.std(selected, kind)
        let scale = subtractMeanOnly ? 1 : 1 / (sd * sd + 1e-8).squareRoot()
        for g in advantages.indices { for i in advantages[g].indices { for t in advantages[g][i].indices {
            advantages[g][i][t] = (advantages[g][i][t] - mu) * scale
        } } }
        diagnostics["whiten_mean"] = mu
        diagnostics["whiten_std"] = sd
    }
}
