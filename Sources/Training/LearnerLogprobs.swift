import Credit
import Foundation
import Objectives
import Torch

/// With a rollout engine apart from the learner (`rollout.weights` bf16 or int8, or a remote
/// server), the learner's float32 logprob and entropy at every trained token, computed before
/// the update: the loss's old logprobs and credit's logprobs and entropies become these, and the
/// engine's own logprobs become `rollout_logprobs`, so TIS / IcePop / seq-mask-TIS correct a real
/// mismatch. Adds the step's mismatch metrics.
struct LearnerLogprobs: InputProvider {
    let forward: ResponseForward
    /// Rows per forward pass.
    let microBatch: Int
    let mismatch: PolicyLossConfig.Mismatch

    func provide(_ inputs: inout StepInputs) throws {
        let (learner, learnerEntropies) = try ResponseForward.rowLogprobs(forward.model, prompts: inputs.rowPrompts, responses: inputs.rowResponses,
                                                                          microBatch: microBatch, entropies: true)
        let entropies = learnerEntropies!
        let rolled = inputs.rollouts.rolled
        let engine = inputs.rows.map { rolled[$0].completion.logprobs }
        inputs.oldLogprobs = learner
        inputs.rolloutLogprobs = engine
        var row = 0
        inputs.fill { t, _ in
            t.logprobs = learner[row]
            t.entropies = entropies[row]
            row += 1
        }
        let actions = inputs.actionMasks
        inputs.metrics.merge(Self.metrics(learner: learner, engine: engine, actions: actions, mismatch)) { $1 }
    }

    /// KL(engine ‖ learner) on the engine's samples as k1 = E[log π_engine − log π_learner] and k3
    /// = E[r − 1 − log r] (r = π_learner / π_engine, never negative), the largest r, and the share
    /// of tokens the configured correction drops (IcePop's band, seq-mask-TIS's sequences) or
    /// truncates (TIS's cap). Over the model's tokens only (an agent's observations are context).
    static func metrics(learner: [[Double]], engine: [[Double]], actions: [[Double]]?, _ m: PolicyLossConfig.Mismatch) -> [String: Double] {
        var k1 = 0.0, k3 = 0.0, rMax = -Double.infinity, n = 0, masked = 0, truncated = 0
        for (i, (l, e)) in zip(learner, engine).enumerated() {
            let used = l.indices.filter { actions?[i][$0] ?? 1 > 0 }
            let logR = used.map { l[$0] - e[$0] }
            let geo = logR.isEmpty ? 1 : Foundation.exp(logR.reduce(0, +) / Double(logR.count))
            for lr in logR {
                let r = Foundation.exp(lr)
                k1 -= lr
                k3 += r - 1 - lr
                rMax = Swift.max(rMax, r)
                n += 1
                switch m.mode {
                case .icepop: if r < m.low || r > m.high { masked += 1 }
                case .seqMaskTIS: if geo < m.low || geo > m.high { masked += 1 }
                case .tis: if r > m.cap { truncated += 1 }
                case .none: break
                }
            }
        }
        guard n > 0 else { return [:] }
        let d = Double(n)
        return ["mismatch/k1": k1 / d, "mismatch/k3": k3 / d, "mismatch/ratio_max": rMax,
                "mismatch/masked_fraction": Double(masked) / d, "mismatch/truncated_fraction": Double(truncated) / d,
                "mismatch/tokens": d]  // the means' weight when data-parallel ranks' metrics merge
    }
}
