import Torch

/// Loss aggregation ("loss_agg_mode", ALGORITHMS.md §1.2) of per-token values `x` under a 0/1
/// mask `m`, both `[B, T]`. Every denominator is guarded, so an all-masked batch gives 0, not NaN.
/// - token_mean: Σ m·x / Σ m
/// - seq_mean_token_mean: (1/N') Σ_i (Σ_t m·x / L_i), N' = #rows with L_i > 0
/// - seq_mean_token_sum: (1/N') Σ_i Σ_t m·x
/// - seq_mean_token_sum_norm: Σ_i Σ_t m·x / C (as verl; C = `norm_constant`, default T).
///   Dr. GRPO's batch-averaged form is this with C = generation budget × batch size.
func aggregate(_ x: Tensor, mask m: Tensor, _ mode: PolicyLossConfig.Aggregation, normConstant: Double? = nil) -> Tensor {
    let masked = x * m
    switch mode {
    case .tokenMean:
        return masked.sum() / m.sum().clamp(min: 1)
    case .seqMeanTokenMean, .seqMeanTokenSum:
        let lengths = m.sum(dim: 1)                        // [B]
        let present = (lengths .> 0).to(dtype: x.dtype)    // [B]
        var perRow = masked.sum(dim: 1)                    // [B]
        if mode == .seqMeanTokenMean { perRow = perRow / lengths.clamp(min: 1) }
        return (perRow * present).sum() / present.sum().clamp(min: 1)
    case .seqMeanTokenSumNorm:
        return masked.sum() / (normConstant ?? Double(x.size(1)))
    }
}

/// Masked mean of a `[B, T]` value (0 when nothing is unmasked), for metrics.
func maskedMean(_ x: Tensor, _ m: Tensor) -> Tensor { (x * m).sum() / m.sum().clamp(min: 1) }

extension PolicyLossConfig.Aggregation {
    /// The weight of one part's aggregate (a micro-batch's) in the aggregate of the whole batch, so
    /// that Σ part aggregate × share is the whole's aggregate and gradient. `tokens` count loss
    /// tokens (valid, weight > 0) and `rows` the rows with at least one:
    /// token_mean: the part's share of loss tokens; seq_mean_*: its share of such rows;
    /// seq_mean_token_sum_norm: 1 (its normaliser is a constant).
    public func share(tokens: Int, rows: Int, ofTokens allTokens: Int, rows allRows: Int) -> Double {
        switch self {
        case .tokenMean: allTokens == 0 ? 0 : Double(tokens) / Double(allTokens)
        case .seqMeanTokenMean, .seqMeanTokenSum: allRows == 0 ? 0 : Double(rows) / Double(allRows)
        case .seqMeanTokenSumNorm: 1
        }
    }
}
