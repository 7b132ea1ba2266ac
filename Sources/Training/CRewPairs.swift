import Environments
import Foundation
import Models
import Rewards
import Rollout

/// CRew-DPO's preference data ("Confidence as a Reward", arXiv:2510.13501 §3.2 and App. A.2; no
/// code released): the policy samples N responses per prompt (30 at temperature 1 in the paper),
/// every right response is paired with every wrong one, and the K pairs with the largest confidence
/// gap c(chosen) − c(rejected) are kept (K = 10 for MATH, 15 for GSM8K), the right response always
/// chosen; c is `ConfidenceReward`'s mean probability of the answer's tokens. The paper does not
/// say whether the gap is signed; `absolute` is the other reading. `random` is the paper's plain-DPO
/// baseline: one right and one wrong response drawn at random per prompt. Identical responses of a
/// prompt count once.
public enum CRewPairs {
    public enum Selection: String, CaseIterable, Sendable { case crew, random }
    public enum Gap: String, CaseIterable, Sendable { case signed, absolute }

    public struct Options: Sendable {
        public var samples = 30
        public var topK = 10
        public var selection = Selection.crew
        public var gap = Gap.signed
        public var extractor = AnswerExtractor.lastNumber
        public var sampling = SamplingConfig(temperature: 1, maxNewTokens: 32)
        /// Prompts sampled together (each with `samples` responses).
        public var batchPrompts = 4
        public init() {}
    }

    /// One pair as the preference loader reads it, with both responses' confidences.
    public struct Pair: Equatable, Sendable {
        public var prompt: String, chosen: String, rejected: String
        public var chosenConfidence: Double, rejectedConfidence: Double
        /// The pair file's line.
        public var line: [String: String] { ["prompt": prompt, "chosen": chosen, "rejected": rejected] }
    }

    /// The (chosen, rejected) indices among one prompt's responses: right responses are chosen.
    public static func select(correct: [Bool], confidence: [Double], _ o: Options, seed: UInt64) -> [(chosen: Int, rejected: Int)] {
        let right = correct.indices.filter { correct[$0] }, wrong = correct.indices.filter { !correct[$0] }
        guard !right.isEmpty, !wrong.isEmpty else { return [] }
        if o.selection == .random {
            var g = SplitMix64(seed: seed)
            return [(right[Int(g.next() % UInt64(right.count))], wrong[Int(g.next() % UInt64(wrong.count))])]
        }
        let all = right.flatMap { i in wrong.map { j in (chosen: i, rejected: j) } }
        func gap(_ p: (chosen: Int, rejected: Int)) -> Double {
            let d = confidence[p.chosen] - confidence[p.rejected]
            return o.gap == .signed ? d : Swift.abs(d)
        }
        // Stable: equal gaps keep the order right × wrong.
        let ranked = all.enumerated().sorted { (gap($0.element), -$0.offset) > (gap($1.element), -$1.offset) }.map(\.element)
        return Array(ranked.prefix(o.topK))
    }

    /// The training prompts of `data` as the model reads them (`chat`) and as a pair file writes them
    /// (the user's text): a procedural task's, or a JSONL file's `{prompt, answer}` lines.
    public static func prompts(_ set: TaskData) throws -> [(raw: String, rendered: TaskSample)] {
        try set.train.map { s in
            guard let q = s.question else {
                throw TrainingError("\(s.source ?? "pairs"): a pair file's prompt is one user message; this example is a chat of several turns (give {prompt, answer} lines)")
            }
            return (q, s)
        }
    }

    /// One sampled response: its prompt as the pair file writes it, its text and whether it is right.
    public struct Trace: Equatable, Sendable { public var prompt: String, text: String, right: Bool }

    /// Samples `prompts` (each `rendered` for the model, `raw` as the pair file writes it) and
    /// returns their pairs, in prompt order, how many prompts had both a right and a wrong
    /// response, and every distinct response (cDPO's positive and negative models learn from
    /// them). The reward's `correct` term says which responses are right.
    public static func build(model: CausalLM, tokenizer: Tokenizer, prompts: [(raw: String, rendered: TaskSample)], reward: RewardFunction,
                             _ o: Options, progress: (Int, Int) -> Void = { _, _ in }) throws -> (pairs: [Pair], mixed: Int, traces: [Trace]) {
        let sampler = Sampler(model: model, tokenizer: tokenizer), confidence = ConfidenceReward(extractor: o.extractor)
        var pairs = [Pair](), mixed = 0, traces = [Trace]()
        for start in stride(from: 0, to: prompts.count, by: o.batchPrompts) {
            let part = Array(prompts[start..<Swift.min(prompts.count, start + o.batchPrompts)])
            var config = o.sampling
            config.seed = o.sampling.seed &+ UInt64(start)
            let out = try sampler.sample(prompts: part.map { tokenizer.encode($0.rendered.prompt) }, n: o.samples, config: config)
            for (p, prompt) in part.enumerated() {
                // Identical responses count once, so no pair file holds the same pair twice.
                var seen = Set<String>()
                let mine = out.filter { $0.promptIndex == p && seen.insert($0.text).inserted }
                var right = [Bool](), conf = [Double]()
                for c in mine {
                    let s = try reward.score(c, of: prompt.rendered, tokenizer: tokenizer)
                    guard let r = s.components["correct"] else {
                        throw TrainingError("pairs: CRew-DPO pairs right with wrong responses by the reward's 'correct' term, and this reward has none")
                    }
                    right.append(r > 0)
                    conf.append(confidence.score(RewardInput(response: c.text, tokenLogprobs: c.logprobs, tokenEnds: c.byteEnds(tokenizer))).value)
                }
                traces += zip(mine, right).map { Trace(prompt: prompt.raw, text: $0.text, right: $1) }
                let chosen = select(correct: right, confidence: conf, o, seed: o.sampling.seed ^ UInt64(start + p))
                if !chosen.isEmpty { mixed += 1 }
                pairs += chosen.map { Pair(prompt: prompt.raw, chosen: mine[$0.chosen].text, rejected: mine[$0.rejected].text,
                                           chosenConfidence: conf[$0.chosen], rejectedConfidence: conf[$0.rejected]) }
            }
            progress(start + part.count, prompts.count)
        }
        return (pairs, mixed, traces)
    }
}
