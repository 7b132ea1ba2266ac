import Foundation
import Hummingbird
import NIOCore
import Rollout

/// A request's choices in the engine: each (prompt, sample) is one engine request, seeded as
/// `Sampler.sample` seeds sample s of its prompt; their events arrive on one stream.
final class Running: @unchecked Sendable {
    let choices: [Choice]
    let engine: BatchEngine
    let events: AsyncStream<(Int, BatchEngine.Event)>
    var ids: [Int] = []
    let onEnd: @Sendable () -> Void
    var ended = false

    /// `onEnd` runs once, when the request is released (its rows still in the engine are cancelled then).
    init(_ g: GenerationRequest, engine: BatchEngine, onEnd: @escaping @Sendable () -> Void) throws {
        self.engine = engine
        self.onEnd = onEnd
        var list = [Choice](), repeats: [[Int]: Int] = [:]
        let (stream, sink) = AsyncStream<(Int, BatchEngine.Event)>.makeStream()
        events = stream
        var requests = [BatchEngine.Request]()
        for p in g.prompts {
            let r = repeats[p, default: 0]
            repeats[p] = r + 1
            for s in 0..<g.n {
                list.append(Choice(index: list.count, prompt: p))
                requests.append(.init(prompt: p, config: g.sampling, sampleIndex: s, repeatIndex: r, topLogprobs: g.logprobs ?? 0))
            }
        }
        choices = list
        do {
            for (i, r) in requests.enumerated() { ids.append(try engine.submit(r) { sink.yield((i, $0)) }) }
        } catch {
            for id in ids { engine.cancel(id) }
            ids = []
            end()
            throw APIError(400, "\(error)")
        }
    }

    deinit { end() }

    /// Cancels what is still decoding and runs `onEnd`, once.
    func end() {
        guard !ended else { return }
        ended = true
        cancel()
        onEnd()
    }

    func cancel() { for (id, c) in zip(ids, choices) where !c.done { engine.cancel(id) } }

    /// Applies one event; returns the choice, the text it adds, and whether it just finished.
    func apply(_ i: Int, _ e: BatchEngine.Event) -> (Choice, String, Bool) {
        let c = choices[i]
        switch e {
        case .token(let id, let lp, let text, let top):
            c.tokens.append(id); c.logprobs.append(lp); c.top.append(top)
            return (c, text, false)
        case .finished(let completion):
            c.completion = completion
            return (c, "", true)
        case .failed(let why):
            c.failure = why
            return (c, "", true)
        }
    }

    /// Waits for every choice to finish (or fail).
    func finish() async throws {
        var open = choices.count
        for await (i, e) in events {
            if apply(i, e).2 { open -= 1 }
            if open == 0 { break }
        }
    }

    /// Writes each choice's tokens as server-sent events as they come, then the usage (when asked) and `[DONE]`.
    func stream(_ shape: ResponseJSON, to writer: inout any ResponseBodyWriter) async throws {
        var open = choices.count, started = Set<Int>(), sent = [Int](repeating: 0, count: choices.count), offset = sent
        func send(_ object: Any) async throws {
            var b = ByteBuffer(string: "data: ")
            b.writeBytes(jsonData(object))
            b.writeString("\n\n")
            try await writer.write(b)
        }
        for await (i, e) in events {
            let (c, text, ended) = apply(i, e)
            if let failure = c.failure {
                try await send(["error": ["message": "generation failed: \(failure)", "type": "internal_error", "code": 500]])
            } else if case .token = e {
                let range = sent[i]..<c.tokens.count
                try await send(shape.chunk(c, text: text, range: range, first: !started.contains(i), finish: false, offsetBase: offset[i]))
                started.insert(i)
                sent[i] = c.tokens.count
                offset[i] += text.count
            } else if ended {
                try await send(shape.chunk(c, text: "", range: sent[i]..<sent[i], first: !started.contains(i), finish: true, offsetBase: offset[i]))
            }
            if ended { open -= 1 }
            if open == 0 { break }
        }
        if shape.request.includeUsage { try await send(shape.usageChunk(choices)) }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }
}
