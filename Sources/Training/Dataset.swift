import Foundation
import Models

/// One JSONL example: `{"prompt", "answer"?}`, chat `{"messages": [{"role", "content"}], "answer"?}`
/// (the prompt is everything before a final assistant turn), a supervised prompt/completion
/// `{"prompt", "completion"}`, or a preference pair. As in TRL's conversational formats, `prompt`
/// may be a list of messages (then a prompt-only line is a chat example) and `completion` a list
/// holding one assistant message.
/// `{"prompt", "chosen", "rejected"}` with optional per-token weights (`chosen_weights`,
/// `rejected_weights`, and SparsePO's KL masks `chosen_kl_weights`, `rejected_kl_weights`).
public enum Example: Equatable, Sendable {
    case prompt(String, answer: String?)
    case chat([ChatMessage], answer: String?)
    /// A string prompt arrives as one user message.
    case completion(prompt: [ChatMessage], completion: String)
    case preference(PreferencePair)
}

/// A dataset read from a JSONL file, shuffled and split by seed.
public struct Dataset: Sendable {
    public let examples: [Example]
    /// The file line of each example (1-based), for error messages.
    public let lines: [Int]
    /// Columns the file has that Tokenwise does not read (an `id`, a `source`…), sorted.
    public let unusedFields: [String]

    public init(examples: [Example], lines: [Int]? = nil, unusedFields: [String] = []) {
        self.examples = examples
        self.lines = lines ?? Array(1...Swift.max(examples.count, 1)).prefix(examples.count).map { $0 }
        self.unusedFields = unusedFields
    }

    /// The fields Tokenwise reads from a line.
    public static let fields = ["answer", "chosen", "chosen_kl_weights", "chosen_weights", "completion", "h_l", "h_w", "messages", "prompt", "rejected",
                                "rejected_kl_weights", "rejected_weights"]

    /// Parses a JSONL file; a bad line is an error naming the file and the line number. `columns`
    /// maps a file's column to the field it holds (`question` → `prompt`), named in errors by `why`.
    public static func load(_ url: URL, columns: [(column: String, field: String, why: String)] = []) throws -> Dataset {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TrainingError("\(url.path): cannot read the dataset") }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError("\(url.path): not UTF-8 text") }
        var examples = [Example](), lines = [Int](), unused = Set<String>()
        for (k, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do {
                let (example, extra) = try parse(Data(trimmed.utf8), columns: columns)
                examples.append(example)
                unused.formUnion(extra)
                lines.append(k + 1)
            } catch let e as TrainingError {
                throw TrainingError("\(url.path):\(k + 1): \(e.message)")
            }
        }
        guard !examples.isEmpty else { throw TrainingError("\(url.path): no examples") }
        return Dataset(examples: examples, lines: lines, unusedFields: unused.sorted())
    }

    /// A line's example and the columns it has that Tokenwise does not read. Other columns are
    /// allowed (users' data carries ids and sources), but one a letter or two from a field Tokenwise
    /// reads is a typo that would otherwise drop that field silently.
    static func parse(_ line: Data, columns: [(column: String, field: String, why: String)] = []) throws -> (Example, [String]) {
        guard var obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { throw TrainingError("not a JSON object") }
        // Every mapped column is taken out first, so two columns may trade names (a reverse-DPO run's chosen and rejected).
        var taken = [(column: String, field: String, why: String, value: Any)]()
        for c in columns {
            guard let v = obj.removeValue(forKey: c.column) else {
                if c.field == "prompt", obj["messages"] == nil { throw TrainingError("needs '\(c.column)' (\(c.why))") }
                continue
            }
            taken.append((c.column, c.field, c.why, v))
        }
        for c in taken {
            guard obj[c.field] == nil else { throw TrainingError("has both '\(c.column)' (\(c.why)) and '\(c.field)': drop one") }
            obj[c.field] = c.value
        }
        let extra = obj.keys.filter { !fields.contains($0) }.sorted()
        for key in extra {
            if let near = fields.first(where: { editDistance($0, key) <= 2 }) {
                throw TrainingError("unknown field '\(key)': did you mean '\(near)'? (fields read: \(fields.joined(separator: ", ")); other columns are ignored)")
            }
        }
        return (try example(obj), extra)
    }

    /// Levenshtein distance, for the typo check (keys are short).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return a.count + b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = Swift.min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    static func example(_ obj: [String: Any]) throws -> Example {
        func string(_ k: String) throws -> String? {
            guard let v = obj[k] else { return nil }
            guard let s = v as? String else { throw TrainingError("'\(k)' must be a string") }
            return s
        }
        func numbers(_ k: String) throws -> [Double]? {
            guard let v = obj[k] else { return nil }
            let bad = TrainingError("'\(k)' must be a list of finite numbers (one per response token)")
            guard let list = v as? [Any] else { throw bad }
            return try list.map { x in
                // JSON booleans arrive as a boolean NSNumber subclass; they are not weights.
                guard let n = x as? NSNumber, String(describing: type(of: x)) != "__NSCFBoolean", n.doubleValue.isFinite else { throw bad }
                return n.doubleValue
            }
        }
        // A list of {role, content} messages (chat lines, TRL's conversational prompts).
        func messages(_ k: String) throws -> [ChatMessage] {
            guard let list = obj[k] as? [[String: Any]], !list.isEmpty else { throw TrainingError("'\(k)' must be a non-empty list of {role, content}") }
            return try list.enumerated().map { i, m -> ChatMessage in
                guard let role = m["role"] as? String, let content = m["content"] as? String else {
                    throw TrainingError("\(k)[\(i)] needs string 'role' and 'content'")
                }
                guard ["system", "user", "assistant"].contains(role) else { throw TrainingError("\(k)[\(i)].role '\(role)' is not system, user or assistant") }
                return ChatMessage(role: role, content: content)
            }
        }
        // A completion: a string, or (conversational) a list of one assistant message.
        func completionText() throws -> String {
            if obj["completion"] is String { return try string("completion")! }
            let list = try messages("completion")
            guard list.count == 1, list[0].role == "assistant" else {
                throw TrainingError("a conversational 'completion' must be a list of one assistant message, got \(list.map(\.role))")
            }
            return list[0].content
        }
        // A binary label: 1 or 0 (as the authors' files write them), or true or false.
        func label(_ k: String) throws -> Bool? {
            guard let v = obj[k] else { return nil }
            if let b = v as? Bool, String(describing: type(of: v)) == "__NSCFBoolean" { return b }
            guard let n = v as? NSNumber, n.doubleValue == 0 || n.doubleValue == 1 else { throw TrainingError("'\(k)' must be 1 (hallucinated) or 0 (factual)") }
            return n.doubleValue == 1
        }
        if let chosen = try string("chosen") {
            guard let rejected = try string("rejected"), let prompt = try string("prompt") else {
                throw TrainingError("a preference pair needs 'prompt', 'chosen' and 'rejected'")
            }
            let w = (try numbers("chosen_weights"), try numbers("rejected_weights"))
            guard (w.0 == nil) == (w.1 == nil) else { throw TrainingError("give both 'chosen_weights' and 'rejected_weights', or neither") }
            let kl = (try numbers("chosen_kl_weights"), try numbers("rejected_kl_weights"))
            guard (kl.0 == nil) == (kl.1 == nil) else { throw TrainingError("give both 'chosen_kl_weights' and 'rejected_kl_weights', or neither") }
            guard kl.0 == nil || w.0 != nil else { throw TrainingError("'chosen_kl_weights' needs 'chosen_weights' and 'rejected_weights' too") }
            let weights = w.0.map { TokenWeights(chosen: $0, rejected: w.1!, chosenKL: kl.0, rejectedKL: kl.1) }
            let h = (try label("h_w"), try label("h_l"))
            guard (h.0 == nil) == (h.1 == nil) else { throw TrainingError("give both 'h_w' and 'h_l' (F-DPO's hallucination labels), or neither") }
            return .preference(PreferencePair(prompt: prompt, chosen: chosen, rejected: rejected, weights: weights,
                                              hallucinated: h.0.map { HallucinationLabels(chosen: $0, rejected: h.1!) }))
        }
        if obj["messages"] != nil {
            guard obj["prompt"] == nil else { throw TrainingError("has both 'messages' and 'prompt': give one") }
            return .chat(try messages("messages"), answer: try string("answer"))
        }
        guard obj["prompt"] != nil else { throw TrainingError("needs 'prompt' (or 'messages')") }
        let conversational = obj["prompt"] is [Any]
        if obj["completion"] != nil {
            guard obj["answer"] == nil else {
                throw TrainingError("has both 'completion' (what supervised fine-tuning learns) and 'answer' (a reference rewards compare with): give one")
            }
            let prompt = conversational ? try messages("prompt") : [ChatMessage(role: "user", content: try string("prompt")!)]
            guard prompt.last?.role != "assistant" else { throw TrainingError("'prompt' ends with an assistant turn; the reply to learn is the 'completion'") }
            return .completion(prompt: prompt, completion: try completionText())
        }
        if conversational { return .chat(try messages("prompt"), answer: try string("answer")) }
        return .prompt(try string("prompt")!, answer: try string("answer"))
    }

    /// A seeded shuffle, then the first `evalFraction` of the examples for evaluation.
    public func split(evalFraction: Double, seed: UInt64) throws -> (train: [Example], eval: [Example]) {
        let (train, eval) = try splitIndices(evalFraction: evalFraction, seed: seed)
        return (train.map { examples[$0] }, eval.map { examples[$0] })
    }

    /// The same split as indices into `examples` (a shuffle's order depends only on the count and
    /// the generator, so it is the one `split` makes).
    public func splitIndices(evalFraction: Double, seed: UInt64) throws -> (train: [Int], eval: [Int]) {
        guard (0..<1).contains(evalFraction) else { throw TrainingError("data: eval fraction must be in [0, 1), got \(evalFraction)") }
        var rng = SplitMix64(seed: seed)
        let shuffled = Array(examples.indices).shuffled(using: &rng)
        let n = Int((Double(shuffled.count) * evalFraction).rounded())
        return (Array(shuffled.dropFirst(n)), Array(shuffled.prefix(n)))
    }
}

extension Example {
    /// The prompt and reference answer for RL, rendered with the model's chat format. A chat
    /// example's final assistant turn (if any) is the answer when none is given.
    public func taskSample(chat: ChatTemplate) throws -> TaskSample {
        switch self {
        case .prompt(let p, let answer):
            return TaskSample(prompt: chat.render([ChatMessage(role: "user", content: p)], addGenerationPrompt: true), answer: answer, question: p)
        case .chat(let messages, let answer):
            var turns = messages
            var reference = answer
            if turns.last?.role == "assistant" {
                let last = turns.removeLast()
                if reference == nil { reference = last.content }
            }
            guard !turns.isEmpty else { throw TrainingError("a chat example needs a turn before the assistant's") }
            return TaskSample(prompt: chat.render(turns, addGenerationPrompt: true), answer: reference)
        case .preference:
            throw TrainingError("a preference pair is not an RL prompt (use a preference objective)")
        case .completion:
            throw TrainingError("a {prompt, completion} line is supervised data (objective: {name: sft}); an RL line gives 'prompt' and, for rewards, 'answer' "
                                + "(data.answer_field: completion reads the completion as the answer)")
        }
    }
}
