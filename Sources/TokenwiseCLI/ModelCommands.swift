import ArgumentParser
import Foundation
import Models
import Torch

/// Options for commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "A Hugging Face directory, a .gguf file, or 'default' (SmolLM2-135M-Instruct).")
    var model: String = "default"

    func load(device: Device) throws -> Pretrained { try Pretrained.load(model, device: device) }
}

/// `--adapter`: a run's LoRA adapter applied to the loaded model (merged into what `convert` writes).
struct AdapterOption: ParsableArguments {
    @Option(help: "A LoRA adapter folder (PEFT format) to apply, e.g. a run's checkpoints/step-N.") var adapter: String?

    func apply(to p: Pretrained) throws {
        if let adapter { try LoRA.load(from: URL(fileURLWithPath: adapter), into: p.model) }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate a chat reply from a model (streams to stdout).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var renamed: RenamedTokenLimit
    @Option(help: "The user message.") var prompt: String
    @Option(help: "A system message.") var system: String?
    @Option(name: .customLong("max-new-tokens"), help: "Most tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature = 0.7
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @Flag(name: .customLong("raw"), help: "Use the prompt as plain text, without the chat template.") var raw = false
    @OptionGroup var adapter: AdapterOption

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxTokens)") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be >= 0, got \(temperature)") }
    }

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        try adapter.apply(to: p)
        let text: String
        if raw {
            text = prompt
        } else {
            var messages = [ChatMessage]()
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            text = try p.chatTemplate().render(messages, addGenerationPrompt: true)
        }
        var stream = StreamDecoder(p.tokenizer)
        let stop = Set(p.tokenizer.eosIds)
        _ = try p.model.generate(prompt: p.tokenizer.encode(text), maxNewTokens: maxTokens, temperature: temperature,
                                 generator: try Generator(seed: seed, device: device), stop: stop) { id in
            guard !stop.contains(id) else { return }
            FileHandle.standardOutput.write(Data(stream.push(id).utf8))
        }
        print(stream.finish())
    }
}

struct Logprobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities and entropies of a text under a model (JSON).",
        discussion: "logprobs[i] is log p(token i+1 | tokens 0…i); entropies[i] the entropy of that distribution.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var adapter: AdapterOption
    @Option(help: "The text to score.") var text: String

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        try adapter.apply(to: p)
        let ids = p.tokenizer.encode(text)
        guard ids.count >= 2 else { throw ValidationError("--text must be at least two tokens long") }
        let context = p.model.config.maxPositionEmbeddings
        guard ids.count <= context else { throw ValidationError("--text is \(ids.count) tokens, longer than the model's context (\(context))") }
        let (lp, ent): ([Double], [Double]) = try withTorchErrors {
            try withNoGrad {
                let input = Tensor(ids.map(Int64.init), shape: [1, ids.count]).to(device)
                let h = try p.model.hidden(input.narrowed(dim: 1, start: 0, length: ids.count - 1))
                let (l, e) = p.model.tokenLogprobs(hidden: h, targets: input.narrowed(dim: 1, start: 1, length: ids.count - 1), chunk: 256)
                return (try l.doubles(), try e.doubles())
            }
        }
        let out: [String: Any] = ["tokens": ids, "pieces": ids.map(p.tokenizer.piece), "logprobs": lp, "entropies": ent]
        print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a model as a Hugging Face directory (transformers and vLLM load it).")

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "The output directory: new, empty, or a model tokenwise wrote before (then replaced).") var out: String
    @Option(help: "Weight dtype in the output: float32, bfloat16 or float16.") var dtype = "float32"
    @OptionGroup var adapter: AdapterOption

    func validate() throws {
        guard let d = DType(name: dtype), [.float32, .bfloat16, .float16].contains(d) else {
            throw ValidationError("--dtype must be float32, bfloat16 or float16, got '\(dtype)'")
        }
    }

    func run() throws {
        let p = try modelOptions.load(device: .cpu)
        try adapter.apply(to: p)
        try p.save(to: URL(fileURLWithPath: out), dtype: DType(name: dtype)!)
        print("wrote \(out)")
    }
}
