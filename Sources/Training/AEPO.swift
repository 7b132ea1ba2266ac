import Foundation

/// ARES's AEPO, "Adaptive Entropy Policy Optimization" (arXiv:2510.08457; shawn0728/ARES @146620e,
/// `examples/reward_function/aepo.py` `compute_score`, `verl/trainer/ray_trainer.py` `fit` and
/// `update_difficulty_and_skip_gid_set`, `verl/workers/rollout/vllm_rollout_spmd.py`). The reward
/// of a response becomes accuracy + s, where s shapes how much it explores, counted as n: the
/// trigger words ("wait", "but", "maybe" …) followed by `window` tokens whose mean entropy is at
/// least a threshold θ. θ is an EMA (decay 0.99) of the batch median of each response's 95th
/// percentile of window means. Each prompt's group is easy (pass rate ≥ 2/3), medium (≥ 1/3) or
/// hard; a bucket's target T is the rounded mean of its groups' mean n, and its cap α adapts by
/// 0.05·(mean − T) (hard: T − mean) within [0, 2]. With δ = n − T, margin m = max(1, f·max(T, 1)):
///   easy, right:   −min(α, H(δ − m)/(m + κ)·α)       easy, wrong:   σ(δ − m)·α·0.6
///   medium, right: −min(α, H(|δ| − m)/(m + κ)·α)     medium, wrong: σ(δ − m)·α·0.8
///   hard, right:   σ(δ + m)·1.2α if δ ≥ −m, else −min(1.2α, ½H(−δ − m)/(m + κ)·1.2α)
///   hard, wrong:   σ(δ − m)·1.2α
/// (H: Huber with κ; σ(x) = 1/(1 + e^(−x/t)); arguments of H and the wrong-answer σ are clipped
/// at 0; f, κ, t = 0.15, 2, 2 easy; 0.25, 3, 2.5 medium; 0.35, 4, 3 hard).
public struct AEPOConfig: Codable, Equatable, Sendable {
    /// `buckets`: each group's bucket, target and α, as the trainer injects them; `released`: what
    /// the released config (online filtering on) trains on, where the reward is computed before
    /// they are injected: every response easy with T = 0 and α = 0.5.
    public enum Reading: String, Codable, Sendable, CaseIterable { case buckets, released }
    /// Tokens after a trigger whose mean entropy counts (`window_size`).
    public var window = 4
    /// The percentile of each response's window means that feeds θ.
    public var percentile = 95.0
    /// θ ← decay·θ + (1 − decay)·median.
    public var thresholdDecay = 0.99
    /// θ before the first step; nil: the first step's own median (the official run takes it from a
    /// validation pass before training).
    public var threshold: Double? = nil
    /// α's start in every bucket, its step, and its range.
    public var alpha = 0.5
    public var alphaLr = 0.05
    public var alphaMin = 0.0
    public var alphaMax = 2.0
    /// The trigger words; nil: the authors' 174.
    public var triggers: [String]? = nil
    public var reading = Reading.buckets

    public init() {}

    enum CodingKeys: String, CodingKey {
        case window, percentile, threshold, alpha, triggers, reading
        case thresholdDecay = "threshold_decay", alphaLr = "alpha_lr", alphaMin = "alpha_min", alphaMax = "alpha_max"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), d = AEPOConfig()
        window = try c.decodeIfPresent(Int.self, forKey: .window) ?? d.window
        percentile = try c.decodeIfPresent(Double.self, forKey: .percentile) ?? d.percentile
        thresholdDecay = try c.decodeIfPresent(Double.self, forKey: .thresholdDecay) ?? d.thresholdDecay
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold)
        alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? d.alpha
        alphaLr = try c.decodeIfPresent(Double.self, forKey: .alphaLr) ?? d.alphaLr
        alphaMin = try c.decodeIfPresent(Double.self, forKey: .alphaMin) ?? d.alphaMin
        alphaMax = try c.decodeIfPresent(Double.self, forKey: .alphaMax) ?? d.alphaMax
        triggers = try c.decodeIfPresent([String].self, forKey: .triggers)
        reading = try c.decodeIfPresent(Reading.self, forKey: .reading) ?? d.reading
    }

    // Every key is written, nil ones as null, so a file may set any of them.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(window, forKey: .window)
        try c.encode(percentile, forKey: .percentile)
        try c.encode(thresholdDecay, forKey: .thresholdDecay)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(alpha, forKey: .alpha)
        try c.encode(alphaLr, forKey: .alphaLr)
        try c.encode(alphaMin, forKey: .alphaMin)
        try c.encode(alphaMax, forKey: .alphaMax)
        try c.encode(triggers, forKey: .triggers)
        try c.encode(reading, forKey: .reading)
    }

    func validate() throws {
        func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
        try need(window >= 1, "'aepo.window' must be at least 1, got \(window)")
        try need((0...100).contains(percentile), "'aepo.percentile' must be in [0, 100], got \(percentile)")
        try need((0..<1).contains(thresholdDecay), "'aepo.threshold_decay' must be in [0, 1), got \(thresholdDecay)")
        try need(threshold?.isFinite ?? true, "'aepo.threshold' must be finite (null: the first step's median)")
        try need(alphaMin >= 0 && alphaMin <= alphaMax && alphaMax.isFinite, "'aepo.alpha_min' and 'aepo.alpha_max' must satisfy 0 <= min <= max, got \(alphaMin) and \(alphaMax)")
        try need((alphaMin...alphaMax).contains(alpha), "'aepo.alpha' must be in [alpha_min, alpha_max] = [\(alphaMin), \(alphaMax)], got \(alpha)")
        try need(alphaLr >= 0 && alphaLr.isFinite, "'aepo.alpha_lr' must be >= 0 and finite, got \(alphaLr)")
        let d = AEPOConfig()
        try need(reading == .buckets || (alphaLr == d.alphaLr && alphaMin == d.alphaMin && alphaMax == d.alphaMax),
                 "'aepo.reading' released gives every response alpha (\(alpha)) with no update per bucket, so 'alpha_lr', 'alpha_min' and 'alpha_max' do not apply: leave them out")
        if let t = triggers {
            try need(!t.isEmpty, "'aepo.triggers' is empty, so no response would ever count a trigger (null: the authors' 174 words)")
            if let bad = t.first(where: { AEPO.normalized($0) != $0 || $0.isEmpty }) {
                try need(false, "'aepo.triggers' holds '\(bad)', which no token matches: a token's text is trimmed and lower-cased before the look-up (write '\(AEPO.normalized(bad))')")
            }
        }
    }

    var words: Set<String> { Set(triggers ?? AEPOTriggers.words) }
}

/// AEPO's arithmetic on plain numbers (the fixture test checks it against the official code's).
enum AEPO {
    enum Difficulty: String, Codable, CodingKeyRepresentable, CaseIterable, Sendable {
        case easy, medium, hard
        init(passRate p: Double) { self = p >= 2.0 / 3 ? .easy : p >= 1.0 / 3 ? .medium : .hard }
        var marginFraction: Double { [0.15, 0.25, 0.35][index] }
        var kappa: Double { [2, 3, 4][index] }
        var temperature: Double { [2, 2.5, 3][index] }
        var capScale: Double { [1, 1, 1.2][index] }
        var index: Int { Self.allCases.firstIndex(of: self)! }
    }

    /// What carries from step to step (saved with checkpoints): θ, and α of each bucket.
    struct State: Codable, Equatable, Sendable {
        var threshold: Double?
        var alpha: [Difficulty: Double]
        init(_ config: AEPOConfig) {
            threshold = config.threshold
            alpha = Dictionary(uniqueKeysWithValues: Difficulty.allCases.map { ($0, config.alpha) })
        }
    }

    /// A token's text as the trigger list is matched: no leading "▁" or "Ġ", trimmed, lower-cased.
    static func normalized(_ text: String) -> String {
        String(text.drop { $0 == "▁" || $0 == "Ġ" }).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// The mean of `h[i+1 ... i+window]` at each position i; a position with fewer tokens after it
    /// gets the mean of the window means so far (its own entropy when there is none yet).
    static func windowMeans(_ h: [Double], window: Int) -> [Double] {
        var means = [Double]()
        for i in h.indices {
            if h.count - i - 1 >= window { means.append(h[(i + 1)...(i + window)].reduce(0, +) / Double(window)) }
            else { means.append(means.isEmpty ? h[i] : means.reduce(0, +) / Double(means.count)) }
        }
        return means
    }

    /// The q-th percentile with linear interpolation between order statistics (numpy's default).
    static func percentile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted(), at = q / 100 * Double(s.count - 1), lo = Int(at.rounded(.down)), hi = Swift.min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (at - Double(lo))
    }

    static func median(_ xs: [Double]) -> Double { percentile(xs, 50) }

    /// n: the triggers (`trigger[i]`) with `window` tokens after them whose mean entropy is ≥ θ.
    static func count(_ h: [Double], trigger: [Bool], threshold: Double, window: Int) -> Int {
        h.indices.filter { i in
            trigger[i] && h.count - i - 1 >= window && h[(i + 1)...(i + window)].reduce(0, +) / Double(window) >= threshold
        }.count
    }

    /// θ for this step's counts, and θ after it: the EMA of the batch median of the responses'
    /// percentiles (`all`), seeded with the first median, which a first step also counts with.
    static func threshold(prior: Double?, percentiles all: [Double], decay: Double) -> (used: Double, next: Double) {
        let batch = median(all)
        guard let prior else { return (batch, batch) }
        return (prior, decay * prior + (1 - decay) * batch)
    }

    /// Each group's bucket from its pass rate, each present bucket's target (the mean of its
    /// groups' mean n, rounded half to even) and α after its update.
    static func buckets(_ groups: [(passRate: Double, meanCount: Double)], alpha: [Difficulty: Double], config: AEPOConfig)
        -> (difficulty: [Difficulty], targets: [Difficulty: Double], alpha: [Difficulty: Double]) {
        let difficulty = groups.map { Difficulty(passRate: $0.passRate) }
        var means = [Difficulty: [Double]](), alpha = alpha, targets = [Difficulty: Double]()
        for (d, g) in zip(difficulty, groups) { means[d, default: []].append(g.meanCount) }
        for (d, v) in means {
            let mean = v.reduce(0, +) / Double(v.count), target = mean.rounded(.toNearestOrEven)
            targets[d] = target
            let error = d == .hard ? target - mean : mean - target
            alpha[d] = Swift.min(Swift.max(alpha[d, default: config.alpha] + config.alphaLr * error, config.alphaMin), config.alphaMax)
        }
        return (difficulty, targets, alpha)
    }

    /// s for a response with n triggers counted, in bucket `d` with target `target` and cap `alpha`.
    static func score(correct: Bool, _ d: Difficulty, count n: Double, target: Double, alpha: Double) -> Double {
        func huber(_ x: Double, _ k: Double) -> Double { let x = Swift.max(x, 0); return x <= k ? 0.5 * x * x / k : x - 0.5 * k }
        func sigmoid(_ x: Double, _ t: Double) -> Double { 1 / (1 + exp(-x / Swift.max(t, 1e-6))) }
        let delta = n - target, margin = Swift.max(1, d.marginFraction * Swift.max(target, 1))
        let kappa = d.kappa, cap = alpha * d.capScale
        let overSigmoid = sigmoid(Swift.max(delta - margin, 0), d.temperature) * cap
        switch (d, correct) {
        case (.easy, true): return -Swift.min(cap, huber(delta - margin, kappa) / (margin + kappa) * cap)
        case (.medium, true): return -Swift.min(cap, huber(abs(delta) - margin, kappa) / (margin + kappa) * cap)
        case (.easy, false): return overSigmoid * 0.6
        case (.medium, false): return overSigmoid * 0.8
        case (.hard, true):
            if delta >= -margin { return sigmoid(delta + margin, d.temperature) * cap }
            return -Swift.min(cap, 0.5 * huber(-delta - margin, kappa) / (margin + kappa) * cap)
        case (.hard, false): return overSigmoid
        }
    }
}
