import Torch

/// AlignDistil, "Token-Level Language Model Alignment as Adaptive Policy Distillation"
/// (arXiv:2503.02832; songmzhang/AlignDistil @f80ca4e, `aligndistil_offpolicy_trainer.py`,
/// `reward_boost_type` "aligndistil"). The student π_θ is distilled, token by token, toward a
/// teacher built from a DPO model's logits z_d and a reverse-DPO model's z_r (DPO with chosen and
/// rejected swapped):
///     α_t = β₂·Σ_v |p_d(v) − p_r(v)| + 10⁻³            (a token-adaptive extrapolation weight)
///     π*  = softmax(((1 + α_t)·z_d − α_t·z_r) / T)
///     ℓ_t = (β / α_t) · KL(π_θ ‖ π*)                    (reverse KL over the whole vocabulary)
/// and a response's loss is the mean of ℓ_t over its tokens; a step's is the mean over responses.
/// The other teachers of the official code are selectable (`teacher`): `theorem1`
/// (w = β/β₂, π* ∝ exp(w·z_d + (1 − w)·z_r), ℓ = β₂·KL), `theorem1_contrast` (the same w,
/// π* ∝ exp(z_d + w·(z_d − z_r))) and `theorem1_adaptive` (w = α_t, π* ∝ exp(α_t·z_d + (1 − α_t)·z_r),
/// ℓ = (β/α_t)·KL).
public enum AlignDistilLoss {
    public enum Teacher: String, Codable, Sendable, CaseIterable {
        case aligndistil, theorem1, theorem1Contrast = "theorem1_contrast", theorem1Adaptive = "theorem1_adaptive"
    }

    /// Which distributions of a response are distilled. `released`: those at the response's own
    /// token positions, as the official mask (unshifted labels) selects them — from the one after
    /// the first response token to the one after the end token; `targets`: those that predict each
    /// response token (the last prompt position through the one before the end token).
    public enum Positions: String, Codable, Sendable, CaseIterable { case released, targets }

    public struct Config: Codable, Equatable, Sendable {
        /// The DPO model and the reverse-DPO model (folders or files `Pretrained.load` reads).
        public var dpoModel: String
        public var reverseModel: String
        public var beta = 0.1
        /// β₂: 10 as `aligndistil_off_policy.sh` (the on-policy script uses 15).
        public var beta2 = 10.0
        /// `kd_temperature`, applied to the teacher's combined logits.
        public var temperature = 1.0
        public var teacher = Teacher.aligndistil
        public var positions = Positions.released

        public init(dpoModel: String, reverseModel: String) { self.dpoModel = dpoModel; self.reverseModel = reverseModel }

        public func validate() throws {
            func need(_ ok: Bool, _ m: String) throws { if !ok { throw ObjectiveError("objective 'aligndistil': \(m)") } }
            try need(!dpoModel.isEmpty, "'dpo_model' is empty: name the DPO model (e.g. RUN/model of a preference run)")
            try need(!reverseModel.isEmpty, "'reverse_model' is empty: name the reverse-DPO model (a preference run with data.chosen_field: rejected and data.rejected_field: chosen)")
            try need(beta > 0 && beta.isFinite, "'beta' must be positive and finite, got \(beta)")
            try need(beta2 > 0 && beta2.isFinite, "'beta2' must be positive and finite, got \(beta2)")
            try need(temperature > 0 && temperature.isFinite, "'temperature' must be positive and finite, got \(temperature)")
        }
    }

    /// Per-token terms for student logits `s`, DPO logits `d` and reverse-DPO logits `r` ([N, V]):
    /// ℓ_t with gradient through `s`, and without gradient the weight w_t (α_t, or the constant
    /// w), KL(π_θ ‖ π_d), KL(π_θ ‖ π_r) and the student's expected token reward
    /// Σ_v π_θ(v)·β·(log p_d(v) − log p_r(v)).
    public static func terms(student s: Tensor, dpo d: Tensor, reverse r: Tensor, _ c: Config)
        -> (loss: Tensor, weight: Tensor, klDPO: Tensor, klReverse: Tensor, reward: Tensor) {
        let ls = s.to(dtype: .float32).logSoftmax(dim: -1), ps = ls.exp()
        let zd = d.to(dtype: .float32).detached(), zr = r.to(dtype: .float32).detached()
        let ld = zd.logSoftmax(dim: -1), lr = zr.logSoftmax(dim: -1)
        let n = s.size(0)
        let weight: Tensor, combined: Tensor, scale: Tensor
        switch c.teacher {
        case .aligndistil, .theorem1Adaptive:
            let alpha = (ld.exp() - lr.exp()).abs().sum(dim: -1) * c.beta2 + 1e-3                 // [N]
            let a = alpha.unsqueezed(dim: -1)
            combined = c.teacher == .aligndistil ? a * (zd - zr) + zd : a * zd + (1 - a) * zr
            (weight, scale) = (alpha, c.beta / alpha)
        case .theorem1, .theorem1Contrast:
            let w = c.beta / c.beta2
            combined = c.teacher == .theorem1 ? zd * w + zr * (1 - w) : (zd - zr) * w + zd
            (weight, scale) = (Tensor.full([n], value: w, device: s.device), Tensor.full([n], value: c.beta2, device: s.device))
        }
        let lt = (combined / c.temperature).logSoftmax(dim: -1)
        let kl = (ps * (ls - lt)).sum(dim: -1)
        let detachedP = ps.detached(), detachedL = ls.detached()
        return (kl * scale, weight, (detachedP * (detachedL - ld)).sum(dim: -1), (detachedP * (detachedL - lr)).sum(dim: -1),
                (detachedP * (ld - lr)).sum(dim: -1) * c.beta)
    }
}
