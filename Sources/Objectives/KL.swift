import Torch

/// KL estimators of Schulman ("Approximating KL Divergence"), ALGORITHMS.md §1.3, per token, with
/// Δ = logp − ref_logp: k1 = Δ, k2 = ½Δ², k3 = e^{−Δ} − 1 + Δ (unbiased, ≥ 0).
/// Δ is clamped to ±20 first (so e^{−Δ} stays finite) and the estimate to ±10 (OpenRLHF).
public enum KL {
    public static func estimate(logprobs: Tensor, refLogprobs: Tensor, _ estimator: PolicyLossConfig.KLEstimator) -> Tensor {
        let delta = (logprobs - refLogprobs).clamp(min: -20, max: 20)
        let k: Tensor
        switch estimator {
        case .k1: k = delta
        case .k2: k = 0.5 * delta.square()
        case .k3: k = (-delta).exp() - 1 + delta
        }
        return k.clamp(min: -10, max: 10)
    }
}
