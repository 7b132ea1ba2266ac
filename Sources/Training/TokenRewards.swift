import Credit
import Foundation
import Models

/// Supplies `token_rewards` (RTO): the implicit token reward of a preference-trained model,
/// log π_dpo(y_t) − log π_ref(y_t), for every trained token, π_ref being the run's reference (the
/// base with LoRA off, or the frozen copy), as the authors' code takes the initial policy's
/// logprobs. Credit scales and clips it (`token_reward_scale`, `token_reward_clip`).
struct TokenRewards: InputProvider {
    let model: CausalLM
    let forward: ResponseForward
    let microBatch: Int

    /// Loads the model at `path` on the policy's device; its tokenizer must be the policy's, or its
    /// logprobs would score other tokens.
    init(path: String, policy: CausalLM, tokenizer: Tokenizer, forward: ResponseForward, microBatch: Int) throws {
        let loaded: Pretrained
        do { loaded = try Pretrained.load(path, device: policy.device) } catch {
            throw TrainingError("model.token_reward_model \(path): \(error)")
        }
        guard loaded.tokenizer.tokens == tokenizer.tokens else {
            throw TrainingError("model.token_reward_model \(path): its tokenizer (\(loaded.tokenizer.vocabSize) tokens) is not the policy's (\(tokenizer.vocabSize)); "
                + "RTO's token rewards compare the two models' logprobs of the same tokens, so train the DPO model from the policy's base")
        }
        model = loaded.model
        self.forward = forward
        self.microBatch = microBatch
    }

    func provide(_ inputs: inout StepInputs) throws {
        let dpo = try ResponseForward.rowLogprobs(model, prompts: inputs.rowPrompts, responses: inputs.rowResponses, microBatch: microBatch).logprobs
        // The reference provider's, when the run has it (it runs first); else computed the same way.
        let ref = try inputs.refLogprobs ?? ReferenceLogprobs.rows(inputs, forward, microBatch: microBatch)
        var row = 0, sum = 0.0, count = 0
        inputs.fill { t, _ in
            t.tokenRewards = zip(dpo[row], ref[row]).map { $0 - $1 }
            sum += t.tokenRewards!.reduce(0, +); count += t.tokenRewards!.count
            row += 1
        }
        inputs.metrics["token_reward_mean"] = sum / Double(Swift.max(count, 1))
    }
}
