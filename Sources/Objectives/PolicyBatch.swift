import Torch

/// A batch of responses for the policy loss: `[B, T]` tensors, right-padded, `mask` 1 on response
/// tokens. `logprobs` carries the gradient; every other input is treated as a constant.
public struct PolicyBatch {
    public var logprobs: Tensor
    public var oldLogprobs: Tensor
    public var advantages: Tensor
    public var mask: Tensor
    /// Log-probabilities reported by the rollout engine (mismatch correction).
    public var rolloutLogprobs: Tensor?
    /// Frozen reference policy (KL regulariser).
    public var refLogprobs: Tensor?
    /// Per-token weights from `Credit` (0 = excluded from the loss and its denominators).
    public var weights: Tensor?
    /// Per-token entropies (HAPO adaptive clipping, DHPO entropy mixing, entropy bonus).
    public var entropies: Tensor?
    /// Turn index of every token, int64 (ST-PPO turn-level ratio).
    public var turns: Tensor?

    public init(logprobs: Tensor, oldLogprobs: Tensor, advantages: Tensor, mask: Tensor,
                rolloutLogprobs: Tensor? = nil, refLogprobs: Tensor? = nil, weights: Tensor? = nil,
                entropies: Tensor? = nil, turns: Tensor? = nil) {
        self.logprobs = logprobs; self.oldLogprobs = oldLogprobs; self.advantages = advantages; self.mask = mask
        self.rolloutLogprobs = rolloutLogprobs; self.refLogprobs = refLogprobs; self.weights = weights
        self.entropies = entropies; self.turns = turns
    }

    /// Checks that every given input has the shape of `logprobs`.
    func validate() throws {
        let shape = logprobs.shape
        guard shape.count == 2 else { throw ObjectiveError("objective: logprobs must be [B, T], got shape \(shape)") }
        guard shape[0] > 0 else { throw ObjectiveError("objective: the batch is empty (no trajectories)") }
        let fields: [(String, Tensor?)] = [("old_logprobs", oldLogprobs), ("advantages", advantages), ("mask", mask),
                                           ("rollout_logprobs", rolloutLogprobs), ("ref_logprobs", refLogprobs),
                                           ("weights", weights), ("entropies", entropies), ("turns", turns)]
        for (name, t) in fields {
            guard let t else { continue }
            guard t.shape == shape else {
                throw ObjectiveError("objective: '\(name)' has shape \(t.shape) but logprobs has \(shape)")
            }
        }
    }
}

/// Right-pads ragged rows into a `[B, T]` tensor (T = longest row, at least 1) and returns the
/// 0/1 mask of real entries.
public func padded(_ rows: [[Double]], dtype: DType = .float32, device: Device = .cpu) -> (values: Tensor, mask: Tensor) {
    let t = Swift.max(1, rows.map(\.count).max() ?? 0)
    var flat = [Double](repeating: 0, count: rows.count * t)
    var mask = [Double](repeating: 0, count: rows.count * t)
    for (i, r) in rows.enumerated() {
        for (j, v) in r.enumerated() { flat[i * t + j] = v; mask[i * t + j] = 1 }
    }
    return (Tensor(flat, shape: [rows.count, t]).to(device, dtype: dtype), Tensor(mask, shape: [rows.count, t]).to(device, dtype: dtype))
}
