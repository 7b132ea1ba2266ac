import Models
import Objectives
import Torch

/// SparsePO's activation-based token masks, as the authors' MaPO trainer computes them
/// (huawei-noah/HEBO, SparsePO/src/trainers/mapo_trainer.py @04f4ece): from the reference model,
/// without gradients, each activation map is its feature mean at the position that predicts each
/// response token, min-max rescaled over that response's tokens (end token included); maps are
/// averaged within their group (MLP post-activation, attention, residual stream, logits) and the
/// groups averaged. One mask serves the reward and the KL term (m^u = m^d), as in MaPO. Tokenwise
/// hooks a subset of the official points: the attention output stands in for q/k/v, and the
/// residual stream is read after the embedding, each sub-block and the final norm. A response whose
/// map is flat (one token, or equal values) takes 1 there, where the official code divides 0 by 0.
enum ActivationMasks {
    /// `[N, R]` masks for `responses[n]` after `prompts[n]` (padding 0).
    static func compute(_ reference: CausalLM, prompts: [[Int]], responses: [[Int]]) throws -> Tensor {
        let rows = zip(prompts, responses).map { $0 + $1 }
        let (ids, real) = ResponseForward.batch(rows)
        let maps = try reference.activationMaps(ids, attentionMask: real)
        let width = responses.map(\.count).max() ?? 0
        // Response token j of row n is predicted from position P_n + j − 1.
        let index = Tensor(zip(prompts, responses).flatMap { p, r in
            (0..<width).map { j in Int64(j < r.count ? p.count + j - 1 : 0) }
        }, shape: [rows.count, width]).to(reference.device)
        let valid = padded(responses.map { [Double](repeating: 1, count: $0.count) }, device: reference.device).values
        return try withTorchErrors { combine(maps.mapValues { $0.map { $0.gather(dim: 1, index: index) } }, valid: valid) }
    }

    /// The mask from maps already aligned to the response tokens (`[N, R]` each, `valid` marking
    /// real tokens): each map min-max rescaled per row, averaged within its group, then across groups.
    static func combine(_ maps: [CausalLM.ActivationProbe.Group: [Tensor]], valid: Tensor) -> Tensor {
        let groups = CausalLM.ActivationProbe.Group.allCases.compactMap { g -> Tensor? in
            guard let list = maps[g], !list.isEmpty else { return nil }
            let rescaled = list.map { rescale($0, valid) }
            return rescaled.dropFirst().reduce(rescaled[0], +) / Double(rescaled.count)
        }
        return groups.dropFirst().reduce(groups[0], +) / Double(groups.count) * valid
    }

    /// (x − min)/(max − min) over each row's valid tokens; 1 where a row is flat.
    static func rescale(_ x: Tensor, _ valid: Tensor) -> Tensor {
        let low = x.maskedFill(valid .== 0, value: .infinity).amin(dims: [1], keepDim: true)
        let high = x.maskedFill(valid .== 0, value: -.infinity).amax(dims: [1], keepDim: true)
        let span = high - low
        let flat = span .<= 1e-12 * (high.abs() + low.abs()).clamp(min: 1)
        return ((x - low) / span.clamp(min: 1e-30)).maskedFill(flat.expanded(to: x.shape), value: 1) * valid
    }
}
