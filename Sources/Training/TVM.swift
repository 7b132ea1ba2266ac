import Foundation
import Models
import Rewards
import Torch

/// Token-supervised value models (Lee et al., arXiv:2407.12863): the value of a partial response is
/// the probability that it ends in a correct answer, estimated from the sampled responses that share
/// the prefix. No code was released; labels follow the paper's definition over the group's responses
/// (prefixes matched on token ids), and the loss its squared error with OVM's reduction
/// (FreedomIntelligence/OVM @e0a68c2 `mse_loss_with_mask`: summed over tokens, averaged over
/// responses), which TVM's verifier training builds on.
public enum TVM {
    /// For each response and each prefix length t = 0…R (R its length), the share of correct ones
    /// among `responses` that begin with that prefix: t = 0 is the group's accuracy, t = R the
    /// share among identical responses (the response's own outcome when it is unique).
    public static func labels(_ responses: [[Int]], correct: [Bool]) -> [[Double]] {
        var children: [[Int: Int]] = [[:]], total = [0], right = [0]
        let paths = zip(responses, correct).map { response, ok -> [Int] in
            var node = 0, path = [0]
            total[0] += 1
            right[0] += ok ? 1 : 0
            for token in response {
                if let next = children[node][token] {
                    node = next
                } else {
                    children.append([:])
                    total.append(0)
                    right.append(0)
                    children[node][token] = children.count - 1
                    node = children.count - 1
                }
                total[node] += 1
                right[node] += ok ? 1 : 0
                path.append(node)
            }
            return path
        }
        return paths.map { $0.map { Double(right[$0]) / Double(total[$0]) } }
    }

    /// Whether each score's `correct` term accepted it; the labels need the term.
    static func correctness(_ scores: [RewardScore]) throws -> [Bool] {
        try scores.map { s in
            guard let c = s.components["correct"] else {
                throw TrainingError("critic.target tvm: the reward has no 'correct' term, and TVM's labels are the share of correct answers "
                    + "among responses sharing a prefix; add a {type: correct} term to 'reward', or use critic.target gae")
            }
            return c > 0
        }
    }
}

extension Critic {
    /// TVM's verifier score of whole responses to `prompts[owner[n]]`: the value after the last
    /// token (the response with one more position read, whose value is not used).
    func finalValues(prompts: [[Int]], owner: [Int], responses: [[Int]], microBatch: Int = 16) throws -> [Double] {
        try rowValues(prompts: prompts, owner: owner, responses: responses.map { $0 + [0] }, microBatch: microBatch).map { $0.last! }
    }
}
