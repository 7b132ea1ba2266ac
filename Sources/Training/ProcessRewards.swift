import Credit
import Models
import Rewards

/// Supplies `step_rewards`: the reward function's process rewards, each at the response token that
/// covers its byte offset.
struct ProcessRewards: InputProvider {
    let tokenizer: Tokenizer

    func provide(_ inputs: inout StepInputs) throws {
        let rollouts = inputs.rollouts
        inputs.fill { t, i in t.stepRewards = stepRewards(rollouts.scores[i].steps, tokens: rollouts.rolled[i].completion.tokens) }
    }

    /// Process rewards at byte offsets of the response → the token that covers each offset.
    func stepRewards(_ steps: [StepScore], tokens: [Int]) -> [Credit.StepReward] {
        let ends = tokenizer.byteEnds(tokens)
        return steps.compactMap { s in
            ends.firstIndex { $0 > s.offset }.map { Credit.StepReward(index: $0, reward: s.reward) }
        }
    }
}
