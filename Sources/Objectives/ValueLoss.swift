import Torch

/// PPO's clipped value loss (verl `compute_value_loss`, OpenRLHF `ValueLoss`):
/// ½·agg(max((V − R)², (V_old + clip(V − V_old, ±clip) − R)²)) over the response tokens, aggregated
/// as the policy loss is (`loss_agg_mode`). All inputs are `[B, T]`; `mask` is 0/1.
public enum ValueLoss {
    /// The loss and the clipped branch's share of the unmasked tokens (`vf_clipfrac`).
    public static func clipped(_ v: Tensor, old: Tensor, returns: Tensor, mask: Tensor, clip: Double,
                               aggregation: PolicyLossConfig.Aggregation, normConstant: Double? = nil) -> (loss: Tensor, clipfrac: Tensor) {
        let clippedV = old + (v - old).clamp(min: -clip, max: clip)
        let a = (v - returns) * (v - returns), b = (clippedV - returns) * (clippedV - returns)
        let loss = aggregate(a.maximum(b), mask: mask, aggregation, normConstant: normConstant) * 0.5
        return (loss, maskedMean((b .> a).to(dtype: mask.dtype), mask))
    }

    /// The plain squared error Σ_t m·(V − target)² per row, averaged over rows with a token (TVM's
    /// loss with OVM's `mse_loss_with_mask` reduction).
    public static func squared(_ v: Tensor, targets: Tensor, mask: Tensor) -> Tensor {
        aggregate((v - targets) * (v - targets), mask: mask, .seqMeanTokenSum)
    }
}
