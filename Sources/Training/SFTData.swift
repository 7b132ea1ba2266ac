import Foundation
import Models
import Objectives
import Rewards

/// One supervised example as the model reads it: its tokens in the chat format, and per token
/// whether the loss predicts it (a target). Token 0 is never a target: nothing precedes it.
public struct SFTExample: Equatable, Sendable {
    public var tokens: [Int]
    public var targets: [Bool]
    public var targetCount: Int { targets.lazy.filter { $0 }.count }
    public init(tokens: [Int], targets: [Bool]) { self.tokens = tokens; self.targets = targets }
}

/// Turns `Example`s into `SFTExample`s with the model's chat template and tokenizer.
struct SFTTokens {
    let tokenizer: Tokenizer
    let chat: ChatTemplate
    let config: SFTLoss.Config
    /// `data.system`, put first in a prompt/completion line's dialogue unless its prompt has a system message.
    let system: String?
    /// The end token that closes every target span.
    let end: Int

    init(tokenizer: Tokenizer, chat: ChatTemplate, config: SFTLoss.Config, system: String?) throws {
        guard let end = tokenizer.eosIds.first else { throw TrainingError("objective 'sft': the tokenizer has no end token to close each response with") }
        self.tokenizer = tokenizer; self.chat = chat; self.config = config; self.system = system; self.end = end
    }

    /// The example's tokens and targets, before truncation.
    func tokens(_ e: Example) throws -> SFTExample {
        switch e {
        case .completion(let prompt, let completion):
            // `data.system` goes first unless the prompt brings its own system message.
            let messages = (prompt.first?.role == "system" ? [] : system.map { [ChatMessage(role: "system", content: $0)] } ?? [])
                + prompt + [ChatMessage(role: "assistant", content: completion)]
            return try dialogue(messages, learn: [messages.count - 1], everything: !config.completionOnlyLoss)
        case .chat(let messages, _):
            return try dialogue(messages, learn: Set(messages.indices.filter { messages[$0].role == "assistant" }), everything: !config.assistantOnlyLoss)
        case .prompt:
            throw TrainingError("objective 'sft' learns a response: give 'completion' with the 'prompt', or 'messages' ending with an assistant turn")
        case .preference:
            throw TrainingError("objective 'sft' learns one response, not a {prompt, chosen, rejected} pair (a preference objective trains on pairs)")
        }
    }

    /// A dialogue built turn by turn: the context up to each assistant turn (as the template
    /// renders it for generation), then the turn's content and the end token, targets when the
    /// turn's index is in `learn` (every token after the first: `everything`). The template must
    /// render the whole dialogue as those pieces, in order, or the model would learn a format it
    /// never sees when it generates.
    func dialogue(_ messages: [ChatMessage], learn: Set<Int>, everything: Bool) throws -> SFTExample {
        guard messages.last?.role == "assistant" else { throw TrainingError("objective 'sft': a chat example must end with an assistant turn (the response to learn)") }
        guard messages.first?.role != "assistant" else { throw TrainingError("objective 'sft': a chat example needs a turn before the first assistant turn") }
        let endText = tokenizer.decode([end])
        var tokens = [Int](), targets = [Bool](), consumed = ""
        for (k, m) in messages.enumerated() where m.role == "assistant" {
            let context = chat.render(Array(messages[..<k]), addGenerationPrompt: true)
            guard context.hasPrefix(consumed) else {
                throw TrainingError("objective 'sft': the chat template renders the dialogue before assistant turn \(k) differently from how the earlier turns were rendered; it cannot be split into context and response tokens")
            }
            let whole = chat.render(Array(messages[...k]), addGenerationPrompt: false)
            guard whole.hasPrefix(context + m.content + endText) else {
                throw TrainingError("objective 'sft': the chat template does not render assistant turn \(k) as its content followed by \(endText.debugDescription) after the generation prompt, so the tokens to learn cannot be found")
            }
            let before = tokenizer.encode(String(context.dropFirst(consumed.count)))
            tokens += before
            targets += before.indices.map { i in everything && tokens.count - before.count + i > 0 }
            let reply = tokenizer.encode(m.content) + [end]
            tokens += reply
            targets += reply.map { _ in everything || learn.contains(k) }
            consumed = context + m.content + endText
        }
        return SFTExample(tokens: tokens, targets: targets)
    }
}

extension TaskData {
    /// A JSONL file of supervised examples (`{prompt, completion}` or chat `messages`), split by
    /// seed and tokenized; an example longer than `max_length` keeps its start (counted in a note),
    /// and one left without a target token is an error naming its line.
    static func loadSFT(_ data: RunConfig.DataSection, config: SFTLoss.Config, tokenizer: Tokenizer, chat: ChatTemplate, context: Int) throws -> TaskData {
        guard ProceduralTask(rawValue: data.task) == nil else {
            throw TrainingError("data: objective '\(config.name)' trains on a JSONL file of {prompt, completion}\(config.distill == nil ? "" : ", {prompt, chosen, rejected}") or chat 'messages' lines, not the procedural task '\(data.task)'")
        }
        let limit = config.rowLength(context: context)
        guard limit <= context else {
            throw TrainingError("objective: 'max_length' is \(limit) tokens, more than the model's context (\(context))")
        }
        // AlignDistil's off-policy data is a preference file's chosen responses (the official trainer reads `chosen_ids`).
        let pairs = config.distill != nil && data.completionField == nil ? [(column: "chosen", field: "completion", why: "objective 'aligndistil' learns each pair's chosen response")] : []
        let set = try Dataset.load(URL(fileURLWithPath: data.task), columns: data.columns + pairs)
        let tokens = try SFTTokens(tokenizer: tokenizer, chat: chat, config: config, system: data.system)
        var cut = 0, answers = 0
        let examples = try zip(set.examples, set.lines).map { e, line -> SFTExample in
            let source = "\(data.task):\(line)"
            do {
                if case .chat(_, let a) = e, a != nil { answers += 1 }
                var x = try tokens.tokens(e)
                if x.tokens.count > limit {
                    cut += 1
                    x.tokens = Array(x.tokens.prefix(limit)); x.targets = Array(x.targets.prefix(limit))
                }
                guard x.targetCount > 0 else {
                    throw TrainingError("no token to learn is left within max_length (\(limit)): the context before the response is \(x.tokens.count) tokens or more; raise objective.max_length")
                }
                return x
            } catch let err as TrainingError { throw TrainingError("\(source): \(err.message)") }
        }
        let (train, eval) = try split(set, data, what: "examples")
        var out = TaskData(train: [], eval: [], reward: CompositeReward([]))
        out.trainSFT = train.map { examples[$0] }
        out.evalSFT = eval.map { examples[$0] }
        out.notes = unusedNote(set, data.task)
        if cut > 0 { out.notes.append("\(data.task): \(cut) of \(examples.count) examples are longer than objective.max_length (\(limit) tokens) and keep only their first \(limit)") }
        if answers > 0 { out.notes.append("\(data.task): objective 'sft' learns the assistant turns and does not read the 'answer' of \(answers) chat lines (the reference rewards and tokenwise eval compare with)") }
        return out
    }
}
