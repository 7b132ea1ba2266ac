import Foundation
import Models
import Objectives
import Torch

/// Where a target token's attention score is read: its own position as the query in row `row`,
/// over the keys of its example's prompt (the tokens before the example's first target).
struct TokenQuery {
    let row: Int, position: Int, promptStart: Int, promptEnd: Int
}

// ssToken inside the supervised trainer: which targets of a forward are learned.
extension SFTTrainer {
    /// The kept targets (positions in the forward's target list) and the selection's metric sums:
    /// each example's top ⌈ρ·n⌉ by γ·minmax(REL) + (1 − γ)·attention, REL from the model before
    /// fine-tuning (no gradient) and the current model, the attention from the tap's layer.
    func ssTokenKeep(_ selected: Tensor, input: Tensor, segments: [[Int]], at: Tensor, targets: [Int64], owners: [Int], queries: [TokenQuery],
                     probabilities p: Tensor, attentionOnly: [Bool], config s: SSTokenConfig) throws -> ([Int], [String: Double]) {
        let target = Tensor(targets).to(model.device)
        func losses(_ m: CausalLM, _ h: Tensor) throws -> [Double] {
            try stride(from: 0, to: targets.count, by: 512).flatMap { start -> [Double] in
                let n = Swift.min(512, targets.count - start)
                let logp = m.logits(hidden: h.narrowed(dim: 0, start: start, length: n)).to(dtype: .float32).logSoftmax(dim: -1)
                return try (-logp.gather(dim: -1, index: target.narrowed(dim: 0, start: start, length: n).unsqueezed(dim: -1))).doubles()
            }
        }
        let now = try withNoGrad { try losses(model, selected) }
        let before = try forward.withReference { m -> [Double] in
            let h = try m.hidden(input, segments: segments)
            return try losses(m, h.reshaped([h.size(0) * h.size(1), h.size(2)]).indexSelect(dim: 0, index: at))
        }
        let attention = try attentionScores(p, queries)
        var keep = [Int]()
        for run in Self.runs(owners) {
            let rel = run.map { before[$0] - now[$0] }
            keep += s.selected(rel: rel, attention: run.map { attention[$0] }, attentionOnly: attentionOnly[owners[run.lowerBound]]).map { run.lowerBound + $0 }
        }
        let sums = ["sstoken_rel_mean": zip(before, now).reduce(0) { $0 + $1.0 - $1.1 }, "sstoken_attention_mean": attention.reduce(0, +),
                    "sstoken_kept_fraction": Double(keep.count)]
        return (keep, sums)
    }

    /// Each query's attention mass on its prompt's keys: differences of the probabilities' running
    /// sums along the keys, read at the prompt's last key and just before its first.
    func attentionScores(_ p: Tensor, _ queries: [TokenQuery]) throws -> [Double] {
        let (t, k) = (p.size(1), p.size(2))
        let running = p.to(dtype: .float32).cumsum(dim: -1).reshaped([-1])
        func flat(_ q: TokenQuery, _ key: Int) -> Int64 { Int64((q.row * t + q.position) * k + key) }
        let high = try running.indexSelect(dim: 0, index: Tensor(queries.map { flat($0, $0.promptEnd - 1) }).to(p.device)).doubles()
        let low = try running.indexSelect(dim: 0, index: Tensor(queries.map { flat($0, Swift.max($0.promptStart - 1, 0)) }).to(p.device)).doubles()
        return queries.indices.map { high[$0] - (queries[$0].promptStart > 0 ? low[$0] : 0) }
    }
}
