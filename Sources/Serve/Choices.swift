import Foundation
import Models
import Rollout

/// One choice of a request while it decodes: what the engine sent so far.
final class Choice {
    let index: Int, prompt: [Int]
    var tokens: [Int] = [], logprobs: [Double] = [], top: [[(id: Int, logprob: Double)]] = []
    var completion: Completion?
    var failure: String?
    init(index: Int, prompt: [Int]) { self.index = index; self.prompt = prompt }

    var done: Bool { completion != nil || failure != nil }

    var finishReason: String { completion?.finishReason == .length ? "length" : "stop" }
}

/// The JSON of completions and chat responses (whole, or as stream chunks), as OpenAI and vLLM lay them out.
struct ResponseJSON: @unchecked Sendable {
    let id: String, created: Int, model: String, chat: Bool
    let tokenizer: Tokenizer
    let request: GenerationRequest

    var object: String { chat ? "chat.completion" : "text_completion" }

    func piece(_ id: Int) -> String { tokenizer.decode([id]) }

    /// Logprobs of tokens `range` of a choice: completions' parallel lists, or chat's `content` entries.
    func logprobs(_ c: Choice, _ range: Range<Int>, offsetBase: Int) -> Any {
        guard let k = request.logprobs else { return NSNull() }
        let ids = Array(c.tokens[range]), lps = Array(c.logprobs[range]), tops = range.map { $0 < c.top.count ? c.top[$0] : [] }
        if chat {
            let content: [[String: Any]] = zip(zip(ids, lps), tops).map { pair, best in
                let (id, lp) = pair
                return ["token": piece(id), "logprob": lp, "bytes": Array(piece(id).utf8).map(Int.init),
                        "top_logprobs": best.prefix(k).map { ["token": piece($0.id), "logprob": $0.logprob, "bytes": Array(piece($0.id).utf8).map(Int.init)] }]
            }
            return ["content": content]
        }
        var offsets = [Int](), at = offsetBase
        for id in ids { offsets.append(at); at += piece(id).count }
        let topDicts: Any = k == 0 ? NSNull() : tops.map { best in
            Dictionary(best.prefix(k).map { (piece($0.id), $0.logprob) }, uniquingKeysWith: { a, _ in a })
        }
        return ["tokens": ids.map(piece), "token_logprobs": lps, "top_logprobs": topDicts, "text_offset": offsets]
    }

    func usage(_ choices: [Choice]) -> [String: Int] {
        let prompt = request.prompts.reduce(0) { $0 + $1.count }, completion = choices.reduce(0) { $0 + $1.tokens.count }
        return ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    /// The whole response once every choice finished.
    func whole(_ choices: [Choice]) -> [String: Any] {
        let list: [[String: Any]] = choices.map { c in
            let text = c.completion?.text ?? ""
            var d: [String: Any] = ["index": c.index, "finish_reason": c.finishReason, "logprobs": logprobs(c, 0..<c.tokens.count, offsetBase: 0)]
            if chat { d["message"] = ["role": "assistant", "content": text] } else { d["text"] = text }
            if request.returnTokenIds { d["token_ids"] = c.tokens; d["prompt_token_ids"] = c.prompt }
            return d
        }
        return ["id": id, "object": object, "created": created, "model": model, "choices": list, "usage": usage(choices)]
    }

    /// A stream chunk for choice `c`: its new text and tokens `range`, or its end (`finish`).
    func chunk(_ c: Choice, text: String, range: Range<Int>, first: Bool, finish: Bool, offsetBase: Int) -> [String: Any] {
        var d: [String: Any] = ["index": c.index, "finish_reason": finish ? c.finishReason : NSNull(),
                                "logprobs": range.isEmpty ? NSNull() : logprobs(c, range, offsetBase: offsetBase)]
        if chat {
            var delta: [String: Any] = ["content": text]
            if first { delta["role"] = "assistant" }
            d["delta"] = finish && text.isEmpty ? [String: Any]() : delta
        } else {
            d["text"] = text
        }
        if request.returnTokenIds {
            d["token_ids"] = Array(c.tokens[range])
            if first { d["prompt_token_ids"] = c.prompt }
        }
        return ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created, "model": model, "choices": [d]]
    }

    func usageChunk(_ choices: [Choice]) -> [String: Any] {
        ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created, "model": model, "choices": [Any](),
         "usage": usage(choices)]
    }
}

func jsonData(_ object: Any) -> Data {
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
}
