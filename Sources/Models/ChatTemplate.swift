import Foundation

/// A chat message (`role` is system, user or assistant).
public struct ChatMessage: Codable, Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// The chat formats our supported families ship, recognised from a model's Jinja template:
/// ChatML (SmolLM2, Qwen2/2.5/3: `<|im_start|>role\ncontent<|im_end|>\n`, with the template's
/// default system prompt when the first message is not a system one) and Llama-3
/// (`<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`).
public enum ChatTemplate: Equatable, Sendable {
    case chatML(defaultSystem: String?)
    case llama3

    /// Recognises `template`, or fails naming it.
    public init(template: String) throws {
        if template.contains("<|im_start|>") {
            self = .chatML(defaultSystem: ChatTemplate.defaultSystem(in: template))
        } else if template.contains("<|start_header_id|>") {
            self = .llama3
        } else {
            let head = template.prefix(80).replacingOccurrences(of: "\n", with: "\\n")
            throw ModelError("chat template not supported (only ChatML and Llama-3 formats): \(head)…")
        }
    }

    /// The system prompt a ChatML template inserts when the conversation has none.
    static func defaultSystem(in template: String) -> String? {
        guard template.contains("!= 'system'") || template.contains("!= \"system\"") else { return nil }
        for marker in ["<|im_start|>system\n", "<|im_start|>system\\n"] {
            guard let start = template.range(of: marker), let end = template.range(of: "<|im_end|>", range: start.upperBound..<template.endIndex) else { continue }
            return String(template[start.upperBound..<end.lowerBound])
        }
        return nil
    }

    public var name: String {
        switch self {
        case .chatML: "chatml"
        case .llama3: "llama3"
        }
    }

    /// What follows an assistant message's content when `next` comes after it and the assistant
    /// speaks again: the message's end, `next` in full, the generation prompt. A multi-turn
    /// dialogue appends this after the tokens the model sampled, so those are never re-rendered
    /// (Llama-3 trims a message's content, which would change an action already in the cache).
    public func continuation(_ next: ChatMessage) -> String {
        let mark = "\u{E000}"
        let text = render([ChatMessage(role: "assistant", content: mark), next], addGenerationPrompt: true)
        return String(text[text.range(of: mark)!.upperBound...])
    }

    /// The prompt text for `messages`; with `addGenerationPrompt`, the opening of the assistant turn.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        switch self {
        case .chatML(let system):
            if let system, messages.first?.role != "system" { out += "<|im_start|>system\n\(system)<|im_end|>\n" }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out += "<|begin_of_text|>"
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content.trimmingCharacters(in: .whitespacesAndNewlines))<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        }
        return out
    }
}
