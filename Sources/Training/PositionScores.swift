import Credit
import Foundation
import Models
import Torch

/// Supplies TW-GRPO's per-group `position_scores` K_t: per response position, the mean over the
/// group's responses of Σ_v (e^{d} − d − 1), d = clamp(mean log-distribution − own, ±11), under
/// the current policy; past a response's end the uniform distribution stands in.
struct PositionScores: InputProvider {
    let model: CausalLM

    func provide(_ inputs: inout StepInputs) throws {
        for (g, members) in inputs.members.enumerated() {
            let responses = members.map { inputs.rollouts.rolled[$0].completion.tokens }
            let prompt = inputs.prompt(of: members[0])
            inputs.groups[g].positionScores = try scores(responses.map { prompt + $0 }, promptLength: prompt.count,
                                                         responseLengths: responses.map(\.count))
        }
    }

    func scores(_ rows: [[Int]], promptLength: Int, responseLengths: [Int]) throws -> [Double] {
        try withTorchErrors {
            try withNoGrad {
                let (ids, mask) = ResponseForward.batch(rows)
                let logits = try model(ids.to(model.device), attentionMask: mask.to(model.device)).to(dtype: .float32).logSoftmax(dim: -1)   // [G, T, V]
                let longest = responseLengths.max() ?? 0
                let v = model.config.vocabSize
                let uniform = Tensor.full([longest, v], value: -Foundation.log(Double(v))).to(model.device)
                let per = rows.indices.map { i -> Tensor in
                    let n = responseLengths[i]
                    let own = logits[i].narrowed(dim: 0, start: promptLength - 1, length: n)
                    return n < longest ? Tensor.cat([own, uniform.narrowed(dim: 0, start: n, length: longest - n)]) : own
                }
                let all = Tensor.stack(per)                                                                  // [G, L, V]
                let d = (all.mean(dim: 0, keepDim: true) - all).clamp(min: -11, max: 11)
                return try (d.exp() - d - 1).sum(dim: -1).mean(dim: 0).doubles()
            }
        }
    }
}
