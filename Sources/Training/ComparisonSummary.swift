import Foundation

/// What a comparison found: per arm, the held-out reward and accuracy after training with 95%
/// intervals over seeds, the area under the training-reward curve, steps to the threshold and the
/// cost; per arm against the baseline, the paired difference over seeds (a paired t-interval:
/// Student's t with n − 1 degrees of freedom on the per-seed differences) and whether it clears 0.
public struct ComparisonSummary: Codable, Equatable {
    /// One finished run's figures.
    public struct RunResult: Codable, Equatable {
        public var seed: UInt64
        public var reward: Double, accuracy: Double
        /// The mean training reward over the steps (the area under the curve per step).
        public var auc: Double
        /// The first step whose training reward reached the threshold (nil: never, or no threshold).
        public var stepsToThreshold: Int?
        public var secondsPerStep: Double
        /// The cost: steps trained and rollout tokens sampled (a budget in tokens or time ends runs at different steps).
        public var steps: Int
        public var rolloutTokens: Double
        /// pass@k of the after-training evaluation at its largest k (nil when it samples once).
        public var passAtK: Double?, k: Int?
        /// The largest `peak_memory_mb` of its steps: the process's peak resident memory (nil in
        /// older runs). Each run of `tokenwise compare` is a process of its own; runs trained one
        /// after another in one process (the library's `Comparison.run`) share that process's peak.
        public var peakMemoryMB: Double?

        init?(run: URL, seed: UInt64, threshold: Double?) {
            guard let after = JSONLines.read(run.appendingPathComponent("eval.jsonl")).last(where: { $0["phase"] as? String == "after" }),
                  let r = (after["reward"] as? [String: Any])?["mean"] as? Double else { return nil }
            let steps = JSONLines.read(run.appendingPathComponent("metrics.jsonl"))
            let rewards = steps.compactMap { $0["reward_mean"] as? Double }
            self.seed = seed
            reward = r
            accuracy = (after["accuracy"] as? [String: Any])?["mean"] as? Double ?? .nan
            auc = ComparisonSummary.auc(rewards)
            stepsToThreshold = threshold.flatMap { t in steps.first { ($0["reward_mean"] as? Double ?? -.infinity) >= t }?["step"] as? Int }
            let seconds = steps.compactMap { $0["step_seconds"] as? Double }
            secondsPerStep = seconds.isEmpty ? 0 : seconds.reduce(0, +) / Double(seconds.count)
            self.steps = steps.count
            rolloutTokens = steps.compactMap { $0["rollout_tokens"] as? Double }.reduce(0, +)
            let pass = (after["pass_at_k"] as? [String: Any] ?? [:]).compactMap { k, v in Int(k).flatMap { $0 > 1 ? $0 : nil }.map { ($0, v) } }.max { $0.0 < $1.0 }
            peakMemoryMB = steps.compactMap { $0["peak_memory_mb"] as? Double }.max()
            k = pass?.0
            passAtK = (pass?.1 as? [String: Any])?["mean"] as? Double
        }
    }

    public struct Arm: Codable, Equatable {
        public var name: String
        public var runs: [RunResult]
        /// Over the seeds.
        public var reward: Estimate, accuracy: Estimate, auc: Estimate, secondsPerStep: Estimate
        /// Mean steps and rollout tokens over the seeds.
        public var steps: Double, rolloutTokens: Double
        /// pass@k over the seeds, when every run has it at the same k.
        public var passAtK: Estimate?, k: Int?
        /// The largest peak over the seeds' runs (MB).
        public var peakMemoryMB: Double?

        init(name: String, runs: [RunResult]) {
            self.name = name
            self.runs = runs
            reward = Estimate(runs.map(\.reward))
            accuracy = Estimate(runs.map(\.accuracy))
            auc = Estimate(runs.map(\.auc))
            secondsPerStep = Estimate(runs.map(\.secondsPerStep))
            steps = runs.map { Double($0.steps) }.reduce(0, +) / Double(Swift.max(runs.count, 1))
            rolloutTokens = runs.map(\.rolloutTokens).reduce(0, +) / Double(Swift.max(runs.count, 1))
            peakMemoryMB = runs.compactMap(\.peakMemoryMB).max()
            let passes = runs.compactMap(\.passAtK)
            if let k = runs.first?.k, passes.count == runs.count, runs.allSatisfy({ $0.k == k }) { self.k = k; passAtK = Estimate(passes) }
        }
    }

    public struct Paired: Codable, Equatable {
        public var arm: String, baseline: String
        /// arm − baseline per seed, and their paired interval.
        public var rewardDifferences: [Double], aucDifferences: [Double]
        public var reward: Estimate, auc: Estimate
        /// Whether the reward difference's 95% interval excludes 0 (needs two or more seeds).
        public var clears: Bool

        init(arm: Arm, baseline: Arm) {
            self.arm = arm.name
            self.baseline = baseline.name
            rewardDifferences = zip(arm.runs, baseline.runs).map { $0.reward - $1.reward }
            aucDifferences = zip(arm.runs, baseline.runs).map { $0.auc - $1.auc }
            reward = Estimate(rewardDifferences)
            auc = Estimate(aucDifferences)
            clears = rewardDifferences.count > 1 && abs(reward.mean) > reward.ci95
        }
    }

    public var arms: [Arm]
    public var baseline: String
    public var paired: [Paired]
    public var test = "paired t-interval over seeds (Student's t, n − 1 degrees of freedom), 95%"

    init(arms: [Arm], baseline: String, paired: [Paired]) { self.arms = arms; self.baseline = baseline; self.paired = paired }

    /// The mean of the training rewards (each step weighs the same); 0 for no steps.
    static func auc(_ rewards: [Double]) -> Double { rewards.isEmpty ? 0 : rewards.reduce(0, +) / Double(rewards.count) }

    /// The pass@k column's name: the arms' k.
    var passHeader: String { arms.first?.k.map { "pass@\($0)" } ?? "pass@k" }

    /// An estimate as the tables write it.
    static func format(_ e: Estimate) -> String { String(format: "%.3f ± %.3f", e.mean, e.ci95) }

    /// One arm's row of the results table (compare.md and compare.html): name, reward, accuracy,
    /// pass@k, AUC, s/step, peak MB, steps, rollout tokens, steps to threshold.
    static func cells(_ a: Arm) -> [String] {
        let f = format
        return [a.name, f(a.reward), f(a.accuracy), a.passAtK.map(f) ?? "–", f(a.auc), String(format: "%.1f", a.secondsPerStep.mean),
                a.peakMemoryMB.map { String(format: "%.0f", $0) } ?? "–", String(format: "%g", a.steps), "\(Int(a.rolloutTokens.rounded()))",
                a.runs.map { $0.stepsToThreshold.map(String.init) ?? "–" }.joined(separator: ", ")]
    }

    /// The results as Markdown tables.
    public var markdown: String {
        let f = Self.format
        var lines = ["| arm | held-out reward | accuracy | \(passHeader) | training-reward AUC | s/step | peak MB | steps | rollout tokens | steps to threshold |",
                     "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for a in arms { lines.append("| " + Self.cells(a).joined(separator: " | ") + " |") }
        lines += ["", "Against \(baseline) (\(test)):", "", "| arm | reward difference | clears 0 | AUC difference |", "| --- | --- | --- | --- |"]
        for p in paired { lines.append("| \(p.arm) | \(f(p.reward)) | \(p.clears ? "yes" : "no") | \(f(p.auc)) |") }
        return lines.joined(separator: "\n") + "\n"
    }
}
