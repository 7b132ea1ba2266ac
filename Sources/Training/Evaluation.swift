import Foundation
import Models
import Rewards
import Rollout

/// A mean with its 95% confidence half-width (Student's t over prompts).
public struct Estimate: Codable, Equatable, Sendable {
    public var mean: Double
    public var ci95: Double
    public init(mean: Double, ci95: Double) { self.mean = mean; self.ci95 = ci95 }

    /// The mean of `values` and the half-width of its 95% interval; one value has no interval (0).
    public init(_ values: [Double]) {
        let n = Double(values.count)
        mean = values.reduce(0, +) / Swift.max(n, 1)
        guard values.count > 1 else { ci95 = 0; return }
        let m = mean
        let variance = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)
        ci95 = Estimate.t975(df: values.count - 1) * (variance / n).squareRoot()
    }

    /// The ratio Σ yᵢ / Σ nᵢ (a per-token mean over examples of nᵢ tokens each) and its 95%
    /// interval by the delta method, the examples being the independent units:
    /// var ≈ Σ (yᵢ − r·nᵢ)² / (k (k − 1) n̄²) for k examples of mean size n̄.
    public init(ratioOf y: [Double], to n: [Double]) {
        let k = Double(y.count), total = n.reduce(0, +)
        mean = total > 0 ? y.reduce(0, +) / total : 0
        guard y.count > 1, total > 0 else { ci95 = 0; return }
        let r = mean, nBar = total / k
        let s = zip(y, n).reduce(0) { $0 + ($1.0 - r * $1.1) * ($1.0 - r * $1.1) }
        ci95 = Estimate.t975(df: y.count - 1) * (s / (k * (k - 1) * nBar * nBar)).squareRoot()
    }

    /// The 97.5% quantile of Student's t with `df` degrees of freedom.
    static func t975(df: Int) -> Double {
        let table: [Double] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        if df <= table.count { return table[df - 1] }
        // Cornish–Fisher expansion around the normal quantile; within 1e-3 for df > 30.
        let z = 1.959964, d = Double(df)
        return z + (z * z * z + z) / (4 * d) + (5 * Foundation.pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * d * d)
    }
}

/// What an evaluation measured: every figure is a mean over prompts with its 95% interval.
public struct EvalResult: Codable, Equatable, Sendable {
    public var prompts: Int
    public var samplesPerPrompt: Int
    public var reward: Estimate
    /// Share of responses the `correct` reward term accepts (nil when the reward has no such term).
    public var accuracy: Estimate?
    /// A progress line for an evaluation `done` of `total` prompts into it, `seconds` so far, with
    /// the time left at the rate so far.
    public static func progressLine(done: Int, of total: Int, seconds: Double) -> String {
        let left = done > 0 ? seconds / Double(done) * Double(total - done) : 0
        return "eval: \(done)/\(total) prompts, \(String(format: "%.1f", seconds)) s, ETA \(Int(left.rounded())) s"
    }

    /// pass@k for k = 1, 2, 4, … ≤ samples (unbiased estimator of Chen et al., 2021), keyed by k.
    public var passAtK: [Int: Estimate]
    public var responseLength: Double
    public var seconds: Double
    /// Best-of-N by a verifier: the figures of the one response per prompt it scores highest.
    public var rerank: RerankResult?
    /// Supervised fine-tuning: the held-out negative log-likelihood per target token.
    public var loss: Estimate?

    enum CodingKeys: String, CodingKey {
        case prompts, reward, accuracy, seconds, rerank, loss
        case samplesPerPrompt = "samples_per_prompt", passAtK = "pass_at_k", responseLength = "response_length"
    }

    /// One line per figure, for the console.
    public var summary: String {
        func f(_ e: Estimate) -> String { String(format: "%.3f ± %.3f", e.mean, e.ci95) }
        var lines = [loss == nil ? "prompts \(prompts) × samples \(samplesPerPrompt), mean response \(String(format: "%.1f", responseLength)) tokens, \(String(format: "%.1f", seconds)) s"
                        : "examples \(prompts), mean \(String(format: "%.1f", responseLength)) target tokens, \(String(format: "%.1f", seconds)) s",
                     "reward    \(f(reward))\(loss == nil ? "" : " (mean log-likelihood per target token)")"]
        if let loss { lines.append("loss      \(f(loss)) (perplexity \(String(format: "%.2f", Foundation.exp(loss.mean))))") }
        if let accuracy { lines.append("accuracy  \(f(accuracy))\(loss == nil ? "" : " (target tokens that are the most likely)")") }
        for k in passAtK.keys.sorted() { lines.append("pass@\(k)\(String(repeating: " ", count: Swift.max(0, 4 - String(k).count)))\(f(passAtK[k]!))") }
        if let r = rerank {
            lines.append("best of \(samplesPerPrompt) by \(r.method): reward \(f(r.reward))" + (r.accuracy.map { ", accuracy \(f($0))" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    /// pass@k for k = 1, 2, 4, … ≤ n over prompts, from each prompt's count of correct samples of n.
    static func passAtK(correct: [Int], n: Int) -> [Int: Estimate] {
        var pass = [Int: Estimate](), k = 1
        while k <= n { pass[k] = Estimate(correct.map { passAtK(n: n, c: $0, k: k) }); k *= 2 }
        return pass
    }

    /// The unbiased pass@k for one prompt with `n` samples of which `c` are correct: 1 − C(n−c, k)/C(n, k).
    public static func passAtK(n: Int, c: Int, k: Int) -> Double {
        guard n - c >= k else { return 1 }
        guard c > 0 else { return 0 }
        var miss = 1.0
        for i in (n - c + 1)...n { miss *= 1 - Double(k) / Double(i) }
        return 1 - miss
    }
}

/// What best-of-N picked, per prompt (means with 95% intervals).
public struct RerankResult: Codable, Equatable, Sendable {
    public var method: String
    public var reward: Estimate
    public var accuracy: Estimate?
}

/// A verifier for best-of-N: a score per response (higher is better), given the prompts' tokens,
/// each response's prompt index into them, and the sampled responses.
public struct Reranker {
    public let method: String
    let score: (_ prompts: [[Int]], _ owner: [Int], _ responses: [Completion]) throws -> [Double]

    /// TVM: the critic's value after the response's last token.
    public static func tvm(_ critic: Critic) -> Reranker {
        Reranker(method: "tvm") { try critic.finalValues(prompts: $0, owner: $1, responses: $2.map(\.tokens)) }
    }

    /// LaSeR's self-reward at test time: log π(z | x, y) with z after the response's EOS, the score up
    /// to LaSeR's β and a constant c (a run that read c from the reference model ranks by this raw
    /// log-probability). A response that never reached EOS has no trained score and ranks last.
    public static func laser(_ model: CausalLM, token: Int) -> Reranker {
        Reranker(method: "laser") { prompts, owner, responses in
            // rowLogprobs runs without autograd and turns libtorch's errors into throws.
            let lp = try ResponseForward.rowLogprobs(model, prompts: owner.map { prompts[$0] }, responses: responses.map { $0.tokens + [token] },
                                                     microBatch: 8).logprobs.map { $0.last! }
            return zip(responses, lp).map { $0.finishReason == .eos ? $1 : -.infinity }
        }
    }

    /// CRew: the mean probability the sampler gave the answer's tokens (the paper's best-of-N).
    public static func confidence(_ tokenizer: Tokenizer, extractor: AnswerExtractor) -> Reranker {
        let reward = ConfidenceReward(extractor: extractor)
        return Reranker(method: "confidence") { _, _, responses in
            responses.map { reward.score(RewardInput(response: $0.text, tokenLogprobs: $0.logprobs, tokenEnds: $0.byteEnds(tokenizer))).value }
        }
    }
}

/// Samples `samplesPerPrompt` responses to each prompt (already in chat form) and scores them; with
/// `rerank`, also the response per prompt the verifier scores highest (the first on ties).
/// `progress` hears, after each batch when there is more than one, the prompts done, of how many,
/// and the seconds so far.
public func evaluate(model: CausalLM, tokenizer: Tokenizer, samples: [TaskSample], reward: RewardFunction,
                     samplesPerPrompt: Int, config: SamplingConfig, batchPrompts: Int = 64, rerank: Reranker? = nil, step: Int = 0,
                     progress: ((Int, Int, Double) -> Void)? = nil,
                     generated: ((TaskSample, Completion, RewardScore) throws -> Void)? = nil) throws -> EvalResult {
    guard !samples.isEmpty else { throw TrainingError("eval: no prompts") }
    guard samplesPerPrompt >= 1 else { throw TrainingError("eval: samples must be at least 1, got \(samplesPerPrompt)") }
    if config.temperature == 0 && samplesPerPrompt > 1 { throw TrainingError("eval: greedy decoding (temperature 0) gives one answer per prompt; use samples 1") }
    let start = DispatchTime.now().uptimeNanoseconds
    let sampler = Sampler(model: model, tokenizer: tokenizer)
    var rewards = [Double](), correct = [Int](), hasCorrect = false, lengths = 0
    var picked = [(reward: Double, correct: Double?)]()
    let perBatch = Swift.max(1, batchPrompts / samplesPerPrompt)
    for chunk in stride(from: 0, to: samples.count, by: perBatch) {
        let part = Array(samples[chunk..<Swift.min(samples.count, chunk + perBatch)])
        let out = try sampler.sample(prompts: part.map { tokenizer.encode($0.prompt) }, n: samplesPerPrompt, config: config)
        var perPrompt = [Double](repeating: 0, count: part.count), right = [Int](repeating: 0, count: part.count)
        let scores = try out.map { try reward.score($0, of: part[$0.promptIndex], tokenizer: tokenizer, step: step) }
        if let rerank {
            let verdict = try rerank.score(part.map { tokenizer.encode($0.prompt) }, out.map(\.promptIndex), out)
            for p in part.indices {
                let mine = out.indices.filter { out[$0].promptIndex == p }
                guard let best = mine.max(by: { (verdict[$0], -$0) < (verdict[$1], -$1) }) else { continue }
                picked.append((scores[best].value, scores[best].components["correct"].map { $0 > 0 ? 1 : 0 }))
            }
        }
        for (c, score) in zip(out, scores) {
            try generated?(part[c.promptIndex], c, score)
            perPrompt[c.promptIndex] += score.value / Double(samplesPerPrompt)
            if let ok = score.components["correct"] { hasCorrect = true; right[c.promptIndex] += ok > 0 ? 1 : 0 }
            lengths += c.tokens.count
        }
        rewards += perPrompt
        correct += right
        if samples.count > perBatch { progress?(chunk + part.count, samples.count, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
    }
    let n = samplesPerPrompt
    let pass = hasCorrect ? EvalResult.passAtK(correct: correct, n: n) : [:]
    let chosen = rerank.map { r in
        RerankResult(method: r.method, reward: Estimate(picked.map(\.reward)),
                     accuracy: hasCorrect ? Estimate(picked.map { $0.correct ?? 0 }) : nil)
    }
    return EvalResult(prompts: samples.count, samplesPerPrompt: n, reward: Estimate(rewards),
                      accuracy: hasCorrect ? Estimate(correct.map { Double($0) / Double(n) }) : nil, passAtK: pass,
                      responseLength: Double(lengths) / Double(samples.count * n),
                      seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, rerank: chosen)
}
