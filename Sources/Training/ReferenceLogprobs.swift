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

    func provide(_ inputs: inout StepInputs) throws {
        let responses = inputs.rowResponses
        let (unique, owner) = ResponseForward.distinct(inputs.rowPrompts)
        let ref = try withTorchErrors {
            try forward.withReference { m in
                let prefix = try m.sharedPrefix(unique)
                return try ResponseForward.rowValues(responses: responses, microBatch: microBatch) { part in
                    try ResponseForward.logprobs(m, prefix: prefix, owner: Array(owner[part]), responses: Array(responses[part])).0
                }
            }
        }
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
