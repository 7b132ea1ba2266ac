import Foundation
import Models
import Objectives
import Torch

// AlignDistil inside the supervised trainer: the frozen teachers and the distillation loss of a
// forward's selected positions.
extension SFTTrainer {
    /// Loads a teacher for `policy`: it must share the policy's tokenizer (the loss compares the
    /// two distributions over the same vocabulary).
    static func teacher(_ path: String, key: String, for policy: CausalLM) throws -> CausalLM {
        let loaded: Pretrained
        do { loaded = try Pretrained.load(path, device: policy.device) } catch { throw TrainingError("objective 'aligndistil': '\(key)' \(path): \(error)") }
        guard loaded.model.config.vocabSize == policy.config.vocabSize else {
            throw TrainingError("objective 'aligndistil': '\(key)' \(path) has a vocabulary of \(loaded.model.config.vocabSize) tokens and the policy \(policy.config.vocabSize); "
                + "AlignDistil compares their distributions token by token, so train the DPO models from the policy's base")
        }
        return loaded.model
    }

    /// Σ_e (1/n_e)·Σ_{t ∈ e} ℓ_t over the positions `at` of the rows (`selected`: the student's hidden
    /// states there), the teachers' logits at the same positions without gradient; and the sums of
    /// the token metrics (the mean weight, the KLs to each teacher; the expected reward per example).
    func distilled(_ selected: Tensor, input: Tensor, segments: [[Int]], at: Tensor, owners: [Int], config c: AlignDistilLoss.Config) throws -> (Tensor, [String: Double]) {
        let (dpo, reverse) = teachers!
        func states(_ m: CausalLM) throws -> Tensor {
            try withNoGrad {
                let h = try m.hidden(input, segments: segments)
                return h.reshaped([h.size(0) * h.size(1), h.size(2)]).indexSelect(dim: 0, index: at)
            }
        }
        let hd = try states(dpo), hr = try states(reverse)
        var counts = [Int: Double]()
        for o in owners { counts[o, default: 0] += 1 }
        let share = Tensor(owners.map { 1 / counts[$0]! }).to(selected.device, dtype: .float32)
        var total: Tensor? = nil, sums = [String: Double]()
        // A few positions at a time: each holds several [n, vocabulary] tensors.
        for start in stride(from: 0, to: owners.count, by: 128) {
            let n = Swift.min(128, owners.count - start)
            func logits(_ m: CausalLM, _ h: Tensor) -> Tensor { m.logits(hidden: h.narrowed(dim: 0, start: start, length: n)) }
            let zd = try withNoGrad { logits(dpo, hd) }, zr = try withNoGrad { logits(reverse, hr) }
            let t = AlignDistilLoss.terms(student: logits(model, selected), dpo: zd, reverse: zr, c)
            let part = (t.loss * share.narrowed(dim: 0, start: start, length: n)).sum()
            total = total.map { $0 + part } ?? part
            for (k, v) in [("distill_weight_mean", t.weight), ("distill_kl_dpo", t.klDPO), ("distill_kl_reverse", t.klReverse), ("distill_expected_reward", t.reward)] {
                sums[k, default: 0] += try v.sum().item()
            }
        }
        return (total!, sums)
    }
}
