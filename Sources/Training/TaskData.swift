import Foundation
import Models
import Objectives
import Rewards

/// A run's prompts, in chat form, with the reward that scores them.
public struct TaskData: Sendable {
    public var train: [TaskSample]
    public var eval: [TaskSample]
    public var reward: RewardFunction
    /// Preference pairs (preference objectives only; then `train` and `eval` are empty).
    public var trainPairs: [PreferencePair] = []
    public var evalPairs: [PreferencePair] = []
    /// Supervised examples (objective `sft` only; then `train` and `eval` are empty).
    public var trainSFT: [SFTExample] = []
    public var evalSFT: [SFTExample] = []
    /// What loading decided that the user should hear (columns of the file that were not read).
    public var notes: [String] = []

    /// The preference pairs of a JSONL file, split by seed; every line must be a pair, with
    /// per-token weights exactly when `objective` reads them.
    public static func loadPairs(_ data: RunConfig.DataSection, objective: PreferenceLoss.Config, tokenizer: Tokenizer,
                                 chat: ChatTemplate) throws -> TaskData {
        guard ProceduralTask(rawValue: data.task) == nil else {
            throw TrainingError("data: a preference objective trains on a JSONL file of {prompt, chosen, rejected} pairs, not the procedural task '\(data.task)'")
        }
        let set = try Dataset.load(URL(fileURLWithPath: data.task), columns: data.columns)
        var pairs = try set.examples.map { e -> PreferencePair in
            guard case .preference(let p) = e else {
                throw TrainingError("\(data.task): a preference objective needs every line to be a {prompt, chosen, rejected} pair")
            }
            return p
        }
        for (p, line) in zip(pairs, set.lines) {
            do {
                try checkWeights(p, objective, tokenizer)
                try checkLabels(p, objective)
            } catch let e as TrainingError { throw TrainingError("\(data.task):\(line): \(e.message)") }
        }
        var flipped = 0
        if objective.inputs.contains(.hallucinated) {
            let read = pairs
            pairs = read.map(\.flippedForFactuality)
            flipped = zip(read, pairs).filter { $0 != $1 }.count
        }
        func rendered(_ indices: [Int]) -> [PreferencePair] {
            indices.map { k in
                var p = pairs[k]
                // T-REG scores each response again after the prompt with a revision instruction.
                if objective.inputs.contains(.revisionRewards) {
                    p.revision = (render(p.prompt + "\n\n" + objective.better, data, chat), render(p.prompt + "\n\n" + objective.worse, data, chat))
                }
                p.prompt = render(p.prompt, data, chat)
                return p
            }
        }
        let (train, eval) = try split(set, data, what: "pairs")
        var out = TaskData(train: [], eval: [], reward: CompositeReward([]), trainPairs: rendered(train), evalPairs: rendered(eval))
        out.notes = unusedNote(set, data.task)
        if flipped > 0 { out.notes.append("\(data.task): F-DPO swapped \(flipped) of \(pairs.count) pairs whose chosen response is the hallucinated one (h_w 1, h_l 0)") }
        return out
    }

    /// A pair has hallucination labels exactly when the objective reads them (F-DPO).
    static func checkLabels(_ p: PreferencePair, _ objective: PreferenceLoss.Config) throws {
        if objective.inputs.contains(.hallucinated) && p.hallucinated == nil {
            throw TrainingError("objective 'fdpo' needs each pair's hallucination labels: give 'h_w' (chosen) and 'h_l' (rejected), 1 or 0")
        }
        if !objective.inputs.contains(.hallucinated) && p.hallucinated != nil {
            throw TrainingError("'h_w' and 'h_l' (F-DPO's hallucination labels) are read by objective fdpo, not '\(objective.name.rawValue)'")
        }
    }

    /// A pair has per-token weights exactly when the objective reads them, one per response token.
    static func checkWeights(_ p: PreferencePair, _ objective: PreferenceLoss.Config, _ tokenizer: Tokenizer) throws {
        let name = objective.name.rawValue
        guard objective.inputs.contains(.weights) else {
            if p.weights != nil, objective.inputs.contains(.activationMasks) {
                throw TrainingError("'chosen_weights' and 'rejected_weights' are read with objective.mask: file; mask is 'activations' (SparsePO's masks from the reference model)")
            }
            if p.weights != nil { throw TrainingError("'chosen_weights' and 'rejected_weights' are read by objectives weighted_dpo and sparsepo, not '\(name)'") }
            return
        }
        guard let w = p.weights else {
            throw TrainingError("objective '\(name)' needs per-token weights: give 'chosen_weights' and 'rejected_weights' (one number per response token)")
        }
        if w.chosenKL != nil && objective.name != .sparsepo { throw TrainingError("'chosen_kl_weights' and 'rejected_kl_weights' are read by objective sparsepo only") }
        for (field, text, values) in [("chosen_weights", p.chosen, w.chosen), ("rejected_weights", p.rejected, w.rejected),
                                      ("chosen_kl_weights", p.chosen, w.chosenKL), ("rejected_kl_weights", p.rejected, w.rejectedKL)] {
            guard let values else { continue }
            let n = tokenizer.encode(text).count
            guard values.count == n else {
                throw TrainingError("'\(field)' has \(values.count) values but the response is \(n) tokens under the model's tokenizer")
            }
        }
    }

    /// A user turn (after `data.system`, when set) in the model's chat format, ready for the reply.
    static func render(_ prompt: String, _ data: RunConfig.DataSection, _ chat: ChatTemplate) -> String {
        var messages = [ChatMessage]()
        if let system = data.system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: prompt))
        return chat.render(messages, addGenerationPrompt: true)
    }

    /// A file's examples split by `data.seed`, as indices into `set.examples`; `eval_size` is a
    /// count, or a share when below 1.
    static func split(_ set: Dataset, _ data: RunConfig.DataSection, what: String) throws -> (train: [Int], eval: [Int]) {
        let fraction = data.evalSize < 1 ? data.evalSize : data.evalSize / Double(set.examples.count)
        let (train, eval) = try set.splitIndices(evalFraction: Swift.min(fraction, 0.999), seed: data.seed)
        guard !train.isEmpty else { throw TrainingError("\(data.task): no training \(what) are left after the eval split") }
        return (train, eval)
    }

    /// The `data` section read: a procedural task, generated so that no eval prompt is also a
    /// training prompt, or a JSONL file split by seed. `reward` overrides the task's own.
    /// `whole`: every line of a JSONL file is an eval example, in file order (no split, no training set).
    public static func load(_ data: RunConfig.DataSection, reward: RewardConfig?, chat: ChatTemplate, whole: Bool = false) throws -> TaskData {
        func render(_ prompt: String) -> String { TaskData.render(prompt, data, chat) }
        if let task = ProceduralTask(rawValue: data.task) {
            guard !whole else { throw TrainingError("data: '\(task.rawValue)' is a procedural task; a whole-file evaluation reads a JSONL file") }
            let evalCount = Int(data.evalSize)
            guard Double(evalCount) == data.evalSize else { throw TrainingError("data: 'eval_size' must be a whole number for a procedural task, got \(data.evalSize)") }
            let evalSet = evalCount == 0 ? [] : try task.samples(count: evalCount, difficulty: data.difficulty, seed: data.seed ^ 0xE7A1_5EED)
            let held = Set(evalSet.map(\.prompt))
            // Draw more than needed, then drop the held-out prompts.
            var train = [TaskSample]()
            var seed = data.seed
            for _ in 0..<8 where train.count < data.trainSize {
                train += try task.samples(count: data.trainSize, difficulty: data.difficulty, seed: seed).filter { !held.contains($0.prompt) }
                seed &+= 0x5EED
            }
            guard !train.isEmpty else {
                throw TrainingError("data: every '\(task.rawValue)' prompt at difficulty \(data.difficulty) is held out for evaluation; lower 'eval_size'")
            }
            let r = reward?.reward ?? task.reward
            return TaskData(train: train.prefix(data.trainSize).map { TaskSample(prompt: render($0.prompt), answer: $0.answer, question: $0.prompt) },
                            eval: evalSet.map { TaskSample(prompt: render($0.prompt), answer: $0.answer, question: $0.prompt) }, reward: r)
        }
        guard data.task.hasSuffix(".jsonl") || FileManager.default.fileExists(atPath: data.task) else {
            let known = ProceduralTask.allCases.map(\.rawValue).joined(separator: ", ")
            throw TrainingError("data: 'task' \(data.task) is neither a procedural task (\(known)) nor a JSONL file")
        }
        let set = try Dataset.load(URL(fileURLWithPath: data.task), columns: data.columns)
        let (train, eval) = whole ? ([], Array(set.examples.indices)) : try split(set, data, what: "examples")
        func samples(_ indices: [Int]) throws -> [TaskSample] {
            try indices.map { k in
                let e = set.examples[k]
                var s: TaskSample
                do { s = try e.taskSample(chat: chat) } catch let err as TrainingError { throw TrainingError("\(data.task):\(set.lines[k]): \(err.message)") }
                if data.system != nil, case .prompt(let p, _) = e { s.prompt = render(p) }
                s.source = "\(data.task):\(set.lines[k])"
                return s
            }
        }
        var out = TaskData(train: try samples(train), eval: try samples(eval),
                           reward: reward?.reward ?? CompositeReward([(1, CorrectnessReward(extractor: .lastNumber))]))
        out.notes = unusedNote(set, data.task)
        return out
    }

    static func unusedNote(_ set: Dataset, _ file: String) -> [String] {
        guard !set.unusedFields.isEmpty else { return [] }
        return ["\(file): the columns \(set.unusedFields.map { "'\($0)'" }.joined(separator: ", ")) are not read (Tokenwise reads \(Dataset.fields.joined(separator: ", ")))"]
    }
}
