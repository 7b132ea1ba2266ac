import ArgumentParser
import Foundation
import Models
import Torch

/// `tokenwise chat`: a conversation with a model (and a run's adapter) on the terminal.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model (and a run's LoRA adapter): each line read is a user message, each reply is printed and kept in the dialogue.",
        discussion: """
            Lines starting with / are commands: /reset forgets the dialogue, /system TEXT sets the system message (and resets), \
            /exit ends (as does the end of input). When the dialogue and the next reply would pass the model's context, the oldest \
            turns are dropped, and the command says so on stderr. The prompt "> " goes to stderr, replies to stdout.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var adapter: AdapterOption
    @Option(help: "A system message.") var system: String?
    @Option(name: .customLong("max-new-tokens"), help: "Most tokens of each reply.") var maxNewTokens = 256
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature = 0.7
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxNewTokens)") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be >= 0, got \(temperature)") }
    }

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        try adapter.apply(to: p)
        let chat = try p.chatTemplate(), stop = Set(p.tokenizer.eosIds), context = p.model.config.maxPositionEmbeddings
        guard maxNewTokens < context else { throw ValidationError("--max-new-tokens (\(maxNewTokens)) must be below the model's context (\(context) positions)") }
        let generator = try Generator(seed: seed, device: device)
        var system = self.system, turns = [ChatMessage]()
        func note(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
        while true {
            note("> ")
            guard let line = Swift.readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text == "/exit" { break }
            if text == "/reset" { turns = []; note("(the dialogue is reset)\n"); continue }
            if text.hasPrefix("/system") {
                system = String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces)
                turns = []
                note("(system message set; the dialogue is reset)\n")
                continue
            }
            if text.hasPrefix("/") { note("(unknown command \(text); known: /reset, /system TEXT, /exit)\n"); continue }
            turns.append(ChatMessage(role: "user", content: line))
            var prompt = p.tokenizer.encode(chat.render((system.map { [ChatMessage(role: "system", content: $0)] } ?? []) + turns, addGenerationPrompt: true))
            // The oldest exchanges go first when the dialogue outgrows the context.
            while prompt.count + maxNewTokens > context && turns.count > 1 {
                turns.removeFirst(Swift.min(2, turns.count - 1))
                note("(the oldest turns no longer fit the model's context and were dropped)\n")
                prompt = p.tokenizer.encode(chat.render((system.map { [ChatMessage(role: "system", content: $0)] } ?? []) + turns, addGenerationPrompt: true))
            }
            guard prompt.count + maxNewTokens <= context else {
                turns.removeLast()
                note("(that message alone is too long for the model's context of \(context) positions)\n")
                continue
            }
            var stream = StreamDecoder(p.tokenizer), reply = ""
            _ = try p.model.generate(prompt: prompt, maxNewTokens: maxNewTokens, temperature: temperature, generator: generator, stop: stop) { id in
                guard !stop.contains(id) else { return }
                let piece = stream.push(id)
                reply += piece
                FileHandle.standardOutput.write(Data(piece.utf8))
            }
            let rest = stream.finish()
            reply += rest
            print(rest)
            turns.append(ChatMessage(role: "assistant", content: reply))
        }
    }
}
