import Foundation
import Models
import Torch

/// cDPO's token weights, "Critical Tokens Matter" (arXiv:2411.19943; chenzhiling9954/Critical-Tokens-Matter
/// @228991e, `pipeline.py` `calculate_ce_score` and `train/train_cdpo.py` `CDPOTrainer`): a positive
/// model (fine-tuned on right answers) and a negative one (on wrong answers) score each token of a
/// response by contrastive estimation,
///     s_t = softmax((1 + β)·z⁺_t − β·z⁻_t)[y_t]     (z the two models' logits; β = 1 in the code),
/// and a rejected response's tokens weigh w_t = 1 − s_t in weighted DPO (the chosen side weighs 1,
/// the code's default `only_neg`; the end token the trainer appends weighs 1, as the code's
/// appended 0 score gives). Tokens both models find likely after a wrong answer's context are the
/// ones it did not get wrong, so they weigh little; the critical tokens weigh most.
public enum CriticalTokens {
    /// s_t of every token of each response after its prompt (both in the models' shared tokenizer),
    /// in row order; at most `batch` rows per forward, fewer where their vocabulary-wide logits
    /// would pass ~16M values (64 MB) per tensor.
    public static func scores(positive: CausalLM, negative: CausalLM, prompts: [[Int]], responses: [[Int]], beta: Double = 1,
                              batch: Int = 8) throws -> [[Double]] {
        guard positive.config.vocabSize == negative.config.vocabSize else {
            throw TrainingError("critical-tokens: the positive model has \(positive.config.vocabSize) tokens and the negative one \(negative.config.vocabSize); both must share the policy's tokenizer")
        }
        var out = [[Double]](), start = 0
        while start < responses.count {
            let longest = Swift.max(1, responses[start..<Swift.min(responses.count, start + batch)].map(\.count).max() ?? 1)
            let rowsPerPass = Swift.max(1, Swift.min(batch, 16_000_000 / (longest * positive.config.vocabSize)))
            let part = start..<Swift.min(responses.count, start + rowsPerPass)
            start = part.upperBound
            let rows = Array(responses[part]), (unique, owner) = ResponseForward.distinct(Array(prompts[part]))
            let values = try withTorchErrors {
                try withNoGrad {
                    func logits(_ m: CausalLM) throws -> Tensor {
                        let h = try ResponseForward.hidden(m, prefix: try m.sharedPrefix(unique), owner: owner, responses: rows)
                        return m.logits(hidden: h).to(dtype: .float32)
                    }
                    let contrast = (try logits(positive) * (1 + beta) - (try logits(negative)) * beta).logSoftmax(dim: -1)
                    let targets = ResponseForward.batch(rows.map { $0.isEmpty ? [0] : $0 }).0.unsqueezed(dim: -1).to(positive.device)
                    return try contrast.gather(dim: -1, index: targets).squeezed(dim: -1).exp().to(.cpu, dtype: .float64).doubles()
                }
            }
            let width = values.count / rows.count
            out += rows.enumerated().map { n, r in Array(values[(n * width)..<(n * width + r.count)]) }
        }
        return out
    }

    /// The pairs with cDPO's weights: 1 on every chosen token, 1 − s_t on every rejected one.
    /// Each pair's prompt is read as the preference trainer renders it with `chat` (no system message).
    public static func weighted(_ pairs: [PreferencePair], positive: CausalLM, negative: CausalLM, tokenizer: Tokenizer, beta: Double = 1,
                                chat: ChatTemplate) throws -> [PreferencePair] {
        func render(_ prompt: String) -> String { TaskData.render(prompt, RunConfig.DataSection(), chat) }
        if let n = pairs.firstIndex(where: { $0.weights != nil }) {
            throw TrainingError("critical-tokens: pair \(n + 1) has 'chosen_weights' and 'rejected_weights' already; they are never replaced")
        }
        let rejected = pairs.map { tokenizer.encode($0.rejected) }
        let s = try scores(positive: positive, negative: negative, prompts: pairs.map { tokenizer.encode(render($0.prompt)) }, responses: rejected, beta: beta)
        return zip(pairs, s).map { p, s in
            var q = p
            q.weights = TokenWeights(chosen: [Double](repeating: 1, count: tokenizer.encode(p.chosen).count), rejected: s.map { 1 - $0 })
            return q
        }
    }
}
