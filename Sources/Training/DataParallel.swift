import Credit
import Foundation
import Torch

/// Data-parallel training over a c10d process group. Each rank samples and scores a contiguous
/// share of the step's prompts (whole groups); credit runs on the whole step's credit batch, which
/// every rank gathers, so batch-wide statistics (whitening, D³S's batch scope, HAPO's entropy
/// quantiles) are those of one process; each rank backpropagates its rows of every mini-batch with
/// the mini-batch's global token and row counts, and gradients are summed across ranks before
/// clipping. Rank 0 alone writes the run's files.
public final class DataParallel: @unchecked Sendable {
    public let group: ProcessGroup
    public var rank: Int { group.rank }
    public var worldSize: Int { group.worldSize }
    public var isLeader: Bool { rank == 0 }

    public init(group: ProcessGroup) { self.group = group }

    /// This rank's contiguous share of `n` items (shares differ by at most one).
    public func share(_ n: Int) -> Range<Int> { (rank * n / worldSize)..<((rank + 1) * n / worldSize) }

    /// Every rank's `value`, in rank order (JSON over an all-gather of bytes).
    func gather<T: Codable>(_ value: T) throws -> [T] {
        let special = (positive: "inf", negative: "-inf", nan: "nan")
        let encoder = JSONEncoder(), decoder = JSONDecoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: special.positive, negativeInfinity: special.negative, nan: special.nan)
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: special.positive, negativeInfinity: special.negative, nan: special.nan)
        let bytes = [UInt8](try encoder.encode(value))
        let lengths = try group.allGather([Double(bytes.count)]).map { Int($0[0]) }
        let width = lengths.max() ?? 0
        let padded = Tensor(bytes + [UInt8](repeating: 0, count: width - bytes.count))
        let all = try group.allGather(padded).toArray(UInt8.self)
        return try lengths.enumerated().map { r, n in
            try decoder.decode(T.self, from: Data(all[(r * width)..<(r * width + n)]))
        }
    }

    /// Credit over the whole step: every rank's groups gathered in rank order (the order one process
    /// would have), estimated once per rank, and this rank's groups' part of the result.
    func credit(_ mine: CreditBatch, _ estimator: AdvantageEstimator) throws -> CreditResult {
        let all = try gather(mine.groups)
        let first = all.prefix(rank).reduce(0) { $0 + $1.count }
        var result = try estimator.estimate(CreditBatch(groups: all.flatMap { $0 }, progress: mine.progress))
        let range = first..<(first + mine.groups.count)
        result.advantages = Array(result.advantages[range])
        result.weights = Array(result.weights[range])
        return result
    }

    /// Rank 0's parameters on every rank (at the start and after a resume).
    public func broadcast(_ parameters: [Tensor]) throws {
        try withNoGrad { try group.broadcast(parameters, root: 0) }
    }

    /// Sums every parameter's gradient over the ranks, in place. A parameter no rank has a gradient
    /// for keeps none (the optimizer skips it as one process would); one that only some ranks
    /// touched gets zeros on the others first.
    func sumGradients(_ parameters: [Tensor]) throws {
        let has = try group.sum(parameters.map { $0.grad == nil ? 0 : 1 })
        var grads: [Tensor] = []
        for (p, n) in zip(parameters, has) where n > 0 {
            if p.grad == nil { p.grad = Tensor.zeros(like: p) }
            grads.append(p.grad!)
        }
        try group.allReduceSum(grads)
    }

    /// The end of a mini-batch's backward passes on every rank: gradients summed (`sumGradients`)
    /// and this rank's parts of the update's metrics merged with the others' (`MetricMerge.update`).
    func finishBackward(_ parameters: [Tensor], metrics: [String: Double]) throws -> [String: Double] {
        try sumGradients(parameters)
        return MetricMerge.update(try gather(metrics))
    }

    /// One line of step metrics from every rank's, each weighted by its rollouts (one gather).
    func mergeStep(_ metrics: [String: Double], rollouts: Int) throws -> [String: Double] {
        struct Part: Codable { var metrics: [String: Double]; var rollouts: Int }
        let all = try gather(Part(metrics: metrics, rollouts: rollouts))
        return MetricMerge.step(all.map(\.metrics), weights: all.map { Double($0.rollouts) })
    }

    /// The signal any rank was asked to stop by (a signal reaches ranks at different moments), else nil.
    func anyStop(_ local: Int32?) throws -> Int32? {
        let most = try group.allGather([Double(local ?? 0)]).map { $0[0] }.max() ?? 0
        return most > 0 ? Int32(most) : nil
    }
}

extension RunConfig {
    /// What a data-parallel run of `world` ranks cannot do yet, refused before anything is loaded.
    public func validateDataParallel(_ world: Int, device: Device) throws {
        guard world > 1 else { return }
        let why = "with \(world) ranks"
        if train.dynamicSampling && aepo != nil {
            throw TrainingError("config: 'aepo' shapes the rewards of the kept groups, which data-parallel dynamic sampling moves between ranks after counting the step's rewards; "
                + "set train.dynamic_sampling to false or run without --nproc (\(why))")
        }
        if train.promptsPerStep < world {
            let what = offline == nil ? "each rank samples whole prompt groups" : "each rank trains on its share of a step's \(sft == nil ? "pairs" : "examples")"
            throw TrainingError("config: 'train.prompts_per_step' (\(train.promptsPerStep)) must be at least the number of ranks (\(world)): \(what)")
        }
        if case .cuda = device {
            throw TrainingError("--device \(device): data-parallel training runs over Gloo on CPU tensors; NCCL for CUDA ranks is not built yet, so run one process per GPU job")
        }
    }
}

/// Where this rank's rows sit among the step's rows on every rank, and the global counts each
/// mini-batch's aggregation divides by, so a mini-batch holds the rows one process would give it.
struct RowLayout {
    /// The global index of this rank's first row, its number of rows, and the rows on all ranks.
    let offset: Int, count: Int, total: Int
    /// Loss tokens of every row on every rank, and the longest response on any rank.
    let lossTokens: [Int], width: Int

    private struct Local: Codable { var lossTokens: [Int]; var width: Int }

    init(lossTokens: [Int], width: Int, dp: DataParallel?) throws {
        count = lossTokens.count
        guard let dp else {
            (offset, total, self.lossTokens, self.width) = (0, lossTokens.count, lossTokens, width)
            return
        }
        let all = try dp.gather(Local(lossTokens: lossTokens, width: width))
        offset = all.prefix(dp.rank).reduce(0) { $0 + $1.lossTokens.count }
        self.lossTokens = all.flatMap(\.lossTokens)
        total = self.lossTokens.count
        self.width = all.map(\.width).max() ?? width
    }

    /// The step's `parts` mini-batches: this rank's rows of each (local indices, possibly none) and
    /// the mini-batch's loss tokens and rows with any loss token, over all ranks.
    /// `size`: the mini-batch's rows on every rank.
    func miniBatches(_ parts: Int) -> [(local: [Int], all: (tokens: Int, rows: Int), size: Int)] {
        let n = Swift.min(parts, total)
        guard n > 0 else { return [] }
        let bounds = (0...n).map { $0 * total / n }
        return (0..<n).map { mb in
            let global = bounds[mb]..<bounds[mb + 1], mine = global.clamped(to: offset..<(offset + count))
            let counts = global.map { lossTokens[$0] }
            return (mine.map { $0 - offset }, (counts.reduce(0, +), counts.filter { $0 > 0 }.count), global.count)
        }
    }
}

/// How one step's metrics from every rank become one line: sums of parts, extremes, and means
/// weighted by each rank's rollouts.
enum MetricMerge {
    /// Metrics of a mini-batch's update: each rank's values are its share of the global sums
    /// (weighted by global counts), so they add up; maxima and minima are taken over ranks.
    static func update(_ all: [[String: Double]]) -> [String: Double] {
        var out: [String: Double] = [:]
        for k in Set(all.flatMap(\.keys)) {
            let v = all.compactMap { $0[k] }
            if k.hasSuffix("_max") { out[k] = v.max() }
            else if k.hasSuffix("_min") { out[k] = v.min() }
            else { out[k] = v.reduce(0, +) }
        }
        return out
    }

    /// A step's rollout and provider metrics, `weights` being each rank's rollout count: counts and
    /// throughputs add up, times are the slowest rank's, `reward_std` pools the ranks' moments, and
    /// the rest are weighted means.
    static func step(_ all: [[String: Double]], weights: [Double]) -> [String: Double] {
        var out: [String: Double] = [:]
        for k in Set(all.flatMap(\.keys)) {
            let pairs = zip(all, weights).compactMap { m, w in m[k].map { ($0, w) } }
            let v = pairs.map(\.0)
            // Σ wᵣ·valueᵣ / Σ wᵣ, a rank without the key counting 0.
            func mean(_ w: [Double]) -> Double { zip(all, w).reduce(0) { $0 + ($1.0[k] ?? 0) * $1.1 } / Swift.max(w.reduce(0, +), 1e-300) }
            if k.hasPrefix("groups_") || k.hasPrefix("dars_") || k.hasSuffix("tokens_per_second") || k == "mismatch/tokens" || k == "rollout_tokens" { out[k] = v.reduce(0, +) }
            // Means over the tokens the learner rescored: weighted by each rank's count of them.
            else if k.hasPrefix("mismatch/") && !k.hasSuffix("_max") { out[k] = mean(all.map { $0["mismatch/tokens"] ?? 0 }) }
            // A reward term or accuracy a rank's scores lack counts 0 for its rollouts, as in one process.
            else if k.hasPrefix("reward_") && k != "reward_std" || k == "accuracy" { out[k] = mean(weights) }
            else if Set(v).count == 1 && pairs.count == all.count { out[k] = v[0] }
            else if k.hasSuffix("_seconds") || k.hasSuffix("_max") || k.hasSuffix("_mb") { out[k] = v.max() }
            else if k.hasSuffix("_min") { out[k] = v.min() }
            else if k == "reward_std" { out[k] = pooledStd(all, weights) }
            else {
                // Over the ranks that report it.
                let w = zip(all, weights).map { $0[k] == nil ? 0 : $1 }
                out[k] = w.reduce(0, +) > 0 ? mean(w) : v.reduce(0, +) / Double(v.count)
            }
        }
        return out
    }

    /// The population std of every rank's rewards from each rank's mean, std and count.
    static func pooledStd(_ all: [[String: Double]], _ weights: [Double]) -> Double {
        let n = weights.reduce(0, +)
        guard n > 0 else { return 0 }
        var mean = 0.0, second = 0.0
        for (m, w) in zip(all, weights) {
            let mu = m["reward_mean"] ?? 0, sd = m["reward_std"] ?? 0
            mean += w * mu
            second += w * (sd * sd + mu * mu)
        }
        mean /= n
        return Swift.max(second / n - mean * mean, 0).squareRoot()
    }
}
