import Torch

/// Turning the policy's logits into the distribution a token is drawn from (HF order):
/// repetition penalty → temperature → top-k → top-p → min-p. Rows are sequences; filtered entries
/// become −∞.
enum LogitsProcessing {
    /// CTRL's penalty (arXiv:1909.05858) as transformers applies it: a seen token's logit is divided
    /// by the penalty when positive, multiplied when negative. `seen`: [L, V] bool.
    static func repetitionPenalty(_ logits: Tensor, seen: Tensor, penalty: Double) -> Tensor {
        let penalised = Tensor.where(logits .> 0, logits / penalty, logits * penalty)
        return Tensor.where(seen, penalised, logits)
    }

    static func topK(_ logits: Tensor, _ k: Int) -> Tensor {
        guard k > 0, k < logits.size(-1) else { return logits }
        let kth = logits.topk(k, dim: -1).values.narrowed(dim: -1, start: k - 1, length: 1)   // [L, 1]
        return logits.maskedFill(logits .< kth, value: -.infinity)
    }

    /// Keeps the most likely tokens until their probability reaches p (always at least one).
    static func topP(_ logits: Tensor, _ p: Double) -> Tensor {
        guard p < 1 else { return logits }
        let (sorted, order) = logits.sorted(dim: -1, descending: true)
        let probs = sorted.softmax(dim: -1)
        let before = probs.cumsum(dim: -1) - probs          // mass strictly above each token
        let dropSorted = before .>= p                        // the first token has 0 before it: kept
        let drop = dropSorted.scattered(dim: -1, index: order, source: dropSorted)
        return logits.maskedFill(drop, value: -.infinity)
    }

    static func minP(_ logits: Tensor, _ m: Double) -> Tensor {
        guard m > 0 else { return logits }
        let probs = logits.softmax(dim: -1)
        let threshold = probs.amax(dims: [-1], keepDim: true) * m
        return logits.maskedFill(probs .< threshold, value: -.infinity)
    }

    /// The filtered, temperature-scaled logits. `temperatures`: [L, 1], all > 0.
    static func process(_ logits: Tensor, temperatures: Tensor, config c: SamplingConfig, seen: Tensor?) -> Tensor {
        var x = logits
        if let seen, c.repetitionPenalty != 1 { x = repetitionPenalty(x, seen: seen, penalty: c.repetitionPenalty) }
        x = x / temperatures
        x = topK(x, c.topK)
        x = topP(x, c.topP)
        x = minP(x, c.minP)
        return x
    }
}
