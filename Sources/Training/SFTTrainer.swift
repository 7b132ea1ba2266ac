import Foundation
import Models
import Objectives
import Torch

/// Supervised fine-tuning on `SFTExample`s with the RL trainer's machinery: the same LoRA or
/// full-weight policy, AdamW, clipping, micro-batches and data-parallel ranks. A step's loss is the
/// mean negative log-likelihood over all of its target tokens (`SFTLoss`).
public final class SFTTrainer {
    public let model: CausalLM
    public let config: SFTLoss.Config
    public let optimizer: AdamW
    let maxGradNorm: Double
    /// Rows per forward pass (0: all of a step's rows at once).
    let microBatch: Int
    /// The longest row: `max_length`, or the model's context.
    let rowLength: Int
    /// This process's rank when the examples of a step are split over several (nil: one process).
    public var dataParallel: DataParallel?
    /// AlignDistil's DPO and reverse-DPO models (objective `aligndistil`), frozen.
    let teachers: (dpo: CausalLM, reverse: CausalLM)?
    /// The policy and, for ssToken's history losses, the model before fine-tuning.
    let forward: ResponseForward

    public init(model: CausalLM, config: SFTLoss.Config, lora: LoRA.Config?, lr: Double, weightDecay: Double, maxGradNorm: Double,
                microBatch: Int, seed: UInt64) throws {
        self.model = model
        self.config = config
        self.maxGradNorm = maxGradNorm
        self.microBatch = microBatch
        rowLength = config.rowLength(context: model.config.maxPositionEmbeddings)
        teachers = try config.distill.map { (try Self.teacher($0.dpoModel, key: "dpo_model", for: model), try Self.teacher($0.reverseModel, key: "reverse_model", for: model)) }
        try config.sstoken?.validate(layers: model.config.numHiddenLayers)
        let (forward, params) = try ResponseForward.attach(model, lora: lora, seed: seed, reference: config.sstoken != nil)
        self.forward = forward
        optimizer = try AdamW(parameters: params, options: .init(lr: lr, weightDecay: weightDecay))
    }

    /// The rows a batch is computed in: one example each, or with packing, best-fit decreasing
    /// into rows of at most `rowLength` tokens (the longest examples placed first, each into the
    /// fullest row it still fits).
    func rows(_ examples: [SFTExample]) -> [[SFTExample]] { rowIndices(examples).map { $0.map { examples[$0] } } }

    /// `rows` as positions in `examples`.
    func rowIndices(_ examples: [SFTExample]) -> [[Int]] {
        guard config.packing else { return examples.indices.map { [$0] } }
        var rows = [[Int]](), free = [Int]()
        for (i, e) in examples.enumerated().sorted(by: { ($0.element.tokens.count, $1.offset) > ($1.element.tokens.count, $0.offset) }) {
            let n = e.tokens.count
            if let best = free.indices.filter({ free[$0] >= n }).min(by: { free[$0] < free[$1] }) {
                rows[best].append(i); free[best] -= n
            } else {
                rows.append([i]); free.append(rowLength - n)
            }
        }
        return rows
    }

    /// Rows' summed target negative log-likelihood (with gradients), per example: its sum, target
    /// count and argmax hits (`perExample`), and the rows' padding positions.
    /// With `distill`, AlignDistil's loss instead: Σ over each example's distilled positions of ℓ_t
    /// divided by its count, and the distillation metrics' sums (`distilled`).
    /// With `select` (ssToken; whether each row's examples select by attention alone), only the
    /// kept targets count, and `distilled` holds the selection's metric sums.
    func forward(_ rows: [[SFTExample]], perExample: Bool = false, type: SFTLoss.LossType = .nll, distill: AlignDistilLoss.Config? = nil,
                 select: [[Bool]]? = nil) throws
        -> (nll: Tensor, tokens: Int, correct: Double, padding: Int, examples: [(nll: Double, tokens: Int, correct: Double)], distilled: [String: Double]) {
        let width = rows.map { $0.reduce(0) { $0 + $1.tokens.count } }.max()!
        var ids = [Int64](), index = [Int64](), targets = [Int64](), owners = [Int]()
        var example = 0, queries = [TokenQuery]()
        // The distribution at position p − 1 predicts token p; AlignDistil's released mask takes the one at p.
        let shift = distill?.positions == .released ? 0 : 1
        for (b, row) in rows.enumerated() {
            var at = 0
            for e in row {
                for p in 1..<Swift.max(1, e.tokens.count) where e.targets[p] {
                    index.append(Int64(b * width + at + p - shift)); targets.append(Int64(e.tokens[p])); owners.append(example)
                    if select != nil { queries.append(TokenQuery(row: b, position: at + p, promptStart: at, promptEnd: at + e.targets.firstIndex(of: true)!)) }
                }
                ids += e.tokens.map(Int64.init)
                at += e.tokens.count
                example += 1
            }
            ids += Array(repeating: 0, count: width - at)
        }
        // Loading refuses an example without a target, so a batch always has some.
        guard !index.isEmpty else { throw TrainingError("objective 'sft': a batch of \(example) examples has no target token") }
        let input = Tensor(ids, shape: [rows.count, width]).to(model.device), segments = rows.map { $0.map(\.tokens.count) }, at = Tensor(index).to(model.device)
        let tap = config.sstoken.map { CausalLM.AttentionTap(layer: $0.layer) }
        let h = try model.hidden(input, segments: segments, tap: select == nil ? nil : tap)
        var selected = h.reshaped([rows.count * width, h.size(2)]).indexSelect(dim: 0, index: at)   // [N, H]
        var selection = [String: Double]()
        if let select, let s = config.sstoken {
            let attentionOnly = zip(rows, select).flatMap { row, flags in row.indices.map { flags[$0] } }
            let (keep, sums) = try ssTokenKeep(selected, input: input, segments: segments, at: at, targets: targets, owners: owners, queries: queries,
                                               probabilities: tap!.probabilities!, attentionOnly: attentionOnly, config: s)
            selected = selected.indexSelect(dim: 0, index: Tensor(keep.map(Int64.init)).to(model.device))
            targets = keep.map { targets[$0] }
            owners = keep.map { owners[$0] }
            selection = sums
        }
        let real = rows.reduce(0) { $0 + $1.reduce(0) { $0 + $1.tokens.count } }
        if let distill {
            let (loss, sums) = try distilled(selected, input: input, segments: segments, at: at, owners: owners, config: distill)
            return (loss, index.count, 0, rows.count * width - real, [], sums)
        }
        let target = Tensor(targets).to(model.device)
        var total: Tensor? = nil, correct = 0.0
        var parts = [(nll: Double, tokens: Int, correct: Double)](repeating: (0, 0, 0), count: example)
        // Logits for ~512 targets at a time, or one example's at a time when they are reported per example.
        let spans = perExample ? Self.runs(owners) : stride(from: 0, to: targets.count, by: 512).map { $0..<Swift.min(targets.count, $0 + 512) }
        for span in spans {
            let (nll, hits) = try SFTLoss.sums(logits: model.logits(hidden: selected.narrowed(dim: 0, start: span.lowerBound, length: span.count)),
                                              targets: target.narrowed(dim: 0, start: span.lowerBound, length: span.count), type: type)
            total = total.map { $0 + nll } ?? nll
            correct += hits
            if perExample { parts[owners[span.lowerBound]] = (try nll.item(), span.count, hits) }
        }
        return (total!, targets.count, correct, rows.count * width - real, parts, selection)
    }

    static func targets(_ examples: [SFTExample]) -> Double { Double(examples.reduce(0) { $0 + $1.targetCount }) }

    /// Consecutive ranges of equal owners.
    static func runs(_ owners: [Int]) -> [Range<Int>] {
        guard !owners.isEmpty else { return [] }
        var out = [Range<Int>](), start = 0
        for i in 1...owners.count where i == owners.count || owners[i] != owners[start] {
            out.append(start..<i); start = i
        }
        return out
    }

    /// One optimizer step on `examples`. Data-parallel, each rank computes its contiguous share,
    /// divided by the whole step's target count, so the summed gradients and metrics are those of
    /// one process on every example.
    /// `first`: the run's index of the step's first example (ssToken's attention-only examples).
    public func step(_ examples: [SFTExample], first firstExample: Int = 0) throws -> [String: Double] {
        guard !examples.isEmpty else { throw TrainingError("train: a step needs at least one example") }
        let start = DispatchTime.now().uptimeNanoseconds
        let share = dataParallel?.share(examples.count) ?? examples.indices
        let mine = Array(examples[share])
        // ssToken learns ⌈ρ·n⌉ of each example's n targets: the step's count of them is known before any forward.
        let all = Double(examples.reduce(0) { $0 + (config.sstoken?.count(of: $1.targetCount) ?? $1.targetCount) })
        let order = rowIndices(mine), rows = order.map { $0.map { mine[$0] } }
        let select = config.sstoken.map { s in order.map { $0.map { firstExample + share.lowerBound + $0 < s.attentionOnlyExamples } } }
        let micro = microBatch > 0 ? microBatch : Swift.max(rows.count, 1)
        var metrics: [String: Double] = ["loss": 0, "tokens": 0, "examples": Double(mine.count), "rows": Double(rows.count), "padding_tokens": 0]
        if config.distill == nil { metrics["token_accuracy"] = 0 }
        // AlignDistil averages each example's tokens, then the examples; likelihood losses average every target token.
        let normalizer = config.distill == nil ? all : Double(examples.count)
        try withTorchErrors {
            for first in stride(from: 0, to: rows.count, by: micro) {
                let part = try forward(Array(rows[first..<Swift.min(rows.count, first + micro)]), type: config.lossType, distill: config.distill,
                                       select: select.map { Array($0[first..<Swift.min(rows.count, first + micro)]) })
                (part.nll / normalizer).backward()
                metrics["loss"]! += try part.nll.item() / normalizer
                if config.distill == nil { metrics["token_accuracy"]! += part.correct / all }
                for (k, v) in part.distilled { metrics[k, default: 0] += v / (k == "distill_expected_reward" ? Double(examples.count) : k.hasPrefix("sstoken_") ? Self.targets(examples) : all) }
                metrics["tokens"]! += Double(part.tokens)
                metrics["padding_tokens"]! += Double(part.padding)
            }
            metrics = try OfflineUpdate.apply(optimizer, dataParallel: dataParallel, maxGradNorm: maxGradNorm, metrics)
        }
        return OfflineUpdate.timed(metrics, optimizer, since: start)
    }

    /// Held-out examples: the mean negative log-likelihood per target token ("loss"; its
    /// perplexity is e^loss) and the share of target tokens that are the argmax ("accuracy"), each
    /// a ratio of sums over examples with its 95% interval; "reward" is the mean log-likelihood
    /// per token (−loss), so that higher is better as for every other run.
    public func evaluate(_ examples: [SFTExample]) throws -> EvalResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var parts = [(nll: Double, tokens: Int, correct: Double)]()
        for chunk in stride(from: 0, to: examples.count, by: 8) {
            let batch = Array(examples[chunk..<Swift.min(examples.count, chunk + 8)])
            try withTorchErrors { try withNoGrad { parts += try forward(batch.map { [$0] }, perExample: true).examples } }
        }
        let counts = parts.map { Double($0.tokens) }
        let loss = Estimate(ratioOf: parts.map(\.nll), to: counts)
        var r = EvalResult(prompts: examples.count, samplesPerPrompt: 1, reward: Estimate(mean: -loss.mean, ci95: loss.ci95),
                           accuracy: Estimate(ratioOf: parts.map(\.correct), to: counts), passAtK: [:],
                           responseLength: counts.reduce(0, +) / Double(Swift.max(examples.count, 1)),
                           seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        r.loss = loss
        return r
    }
}
