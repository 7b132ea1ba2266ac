import Credit
import Torch

/// Supplies the frozen reference policy's logprob of every trained token: the loss's
/// `ref_logprobs` (`objective.kl_coef`) and, when credit shapes rewards with KL, each trajectory's
/// `kl` = logp_old − logp_ref (the k1 estimate, as verl's and OpenRLHF's KL-in-reward default).
struct ReferenceLogprobs: InputProvider {
    let forward: ResponseForward
    /// Rows per forward pass.
    let microBatch: Int
    /// Whether credit reads per-token `kl`.
    let klForCredit: Bool

    /// The reference policy's logprob of every token of the step's trained rows, in row order.
    static func rows(_ inputs: StepInputs, _ forward: ResponseForward, microBatch: Int) throws -> [[Double]] {
        try forward.withReference { m in
            try ResponseForward.rowLogprobs(m, prompts: inputs.rowPrompts, responses: inputs.rowResponses, microBatch: microBatch).logprobs
        }
    }

    func provide(_ inputs: inout StepInputs) throws {
        let ref = try Self.rows(inputs, forward, microBatch: microBatch)
        inputs.refLogprobs = ref
        guard klForCredit else { return }
        var row = 0
        let rolled = inputs.rollouts.rolled, learner = inputs.oldLogprobs
        inputs.fill { t, i in
            t.kl = zip(learner?[row] ?? rolled[i].completion.logprobs, ref[row]).map { $0 - $1 }
            row += 1
        }
    }
}
