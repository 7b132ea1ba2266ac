import ArgumentParser
import Foundation
import Models
import Rewards
import Rollout
import Torch
import Training

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, mean reward and pass@k (with 95% confidence intervals) of a model on a task's held-out prompts.",
        discussion: "The held-out prompts are those a training run with the same data settings never trains on.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "A procedural task (arithmetic, countdown) or a JSONL file.") var task = "arithmetic"
    @Option(help: "Procedural difficulty, 1…5.") var difficulty = 1
    @Option(help: "Held-out prompts (procedural), or the share of a file when below 1 (default 64).") var prompts: Double?
    @Flag(help: "Evaluate every line of the --task JSONL file, in order (no held-out split).") var all = false
    @Option(help: "Responses per prompt (pass@k for k = 1, 2, 4, … up to this).") var samples = 4
    @Option(help: "Sampling temperature; 0 is greedy (then --samples must be 1).") var temperature = 1.0
    @Option(name: .customLong("max-new-tokens"), help: "Most new tokens per response.") var maxNewTokens = 32
    @Option(help: "Seed of the task data (the same as the run's data.seed).") var dataSeed: UInt64 = 0
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 1234
    @OptionGroup var adapter: AdapterOption
    @Option(help: """
        Best-of-N by a verifier: per prompt, the response that 'tvm' (the critic of --critic after the last token), 'laser' (the model's \
        log-probability of --laser-token after the response: LaSeR's self-reward) or 'confidence' (CRew: the mean probability of the \
        answer's tokens) scores highest.
        """)
    var rerank: String?
    @Option(name: .customLong("laser-token"), help: "The self-reward token z a LaSeR run trained (its laser.token), for --rerank laser.")
    var laserToken: String?
    @Option(help: "Where the answer is for --rerank confidence: last_number (the default), boxed or answer_tag.") var extractor: String?
    @Option(help: "A checkpoint folder holding a critic (critic.safetensors), for --rerank tvm; its base is --model unless the critic has its own.")
    var critic: String?
    @Flag(help: "Print the result as JSON.") var json = false
    @Option(help: "Write every response to this JSONL file (prompt, answer, sample, response, reward and its parts, finish reason); it must not exist.")
    var generations: String?

    func validate() throws {
        guard samples >= 1, samples <= RunConfig.Limits.samples else { throw ValidationError("--samples must be 1…\(RunConfig.Limits.samples), got \(samples)") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be >= 0, got \(temperature)") }
        guard temperature > 0 || samples == 1 else { throw ValidationError("--samples must be 1 with greedy decoding (--temperature 0)") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxNewTokens)") }
        if let rerank {
            guard ["tvm", "laser", "confidence"].contains(rerank) else { throw ValidationError("--rerank must be tvm, laser or confidence, got '\(rerank)'") }
            guard rerank != "tvm" || critic != nil else { throw ValidationError("--rerank tvm scores with a critic: give --critic with a checkpoint folder of a run that had a 'critic:' section") }
            guard rerank != "laser" || laserToken != nil else { throw ValidationError("--rerank laser reads the self-reward token's log-probability: give --laser-token (the run's laser.token)") }
            guard samples >= 2 else { throw ValidationError("--rerank picks one of several responses: --samples must be at least 2, got \(samples)") }
        }
        if critic != nil && rerank != "tvm" { throw ValidationError("--critic is read only by --rerank tvm") }
        if laserToken != nil && rerank != "laser" { throw ValidationError("--laser-token is read only by --rerank laser") }
        if let extractor {
            guard rerank == "confidence" else { throw ValidationError("--extractor is read only by --rerank confidence") }
            guard AnswerExtractor(rawValue: extractor) != nil else { throw ValidationError("--extractor must be last_number, boxed or answer_tag, got '\(extractor)'") }
        }
        if let prompts, !(prompts > 0 && prompts <= Double(RunConfig.Limits.prompts)) {
            throw ValidationError("--prompts must be positive and at most \(RunConfig.Limits.prompts), got \(prompts)")
        }
        if let generations, FileManager.default.fileExists(atPath: generations) {
            throw ValidationError("--generations \(generations) exists already (it is never overwritten)")
        }
        if all && prompts != nil { throw ValidationError("--all evaluates the whole file: drop --prompts") }
        if all && ProceduralTask(rawValue: task) != nil { throw ValidationError("--all evaluates a JSONL file; '\(task)' is a procedural task (use --prompts)") }
    }

    func run() throws {
        let device = try runtime.apply()
        var data = RunConfig.DataSection()
        data.task = task
        data.difficulty = difficulty
        data.evalSize = prompts ?? 64
        data.seed = dataSeed
        data.trainSize = 1
        let p = try modelOptions.load(device: device)
        try adapter.apply(to: p)
        let verifier: Reranker?
        switch rerank {
        case "tvm":
            verifier = .tvm(try Critic.load(from: URL(fileURLWithPath: critic!), policy: p.model, policySource: modelOptions.model, tokenizer: p.tokenizer,
                                            warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }))
        case "laser":
            var laser = LaSeRConfig()
            laser.token = laserToken
            verifier = .laser(p.model, token: try laser.resolvedToken(tokenizer: p.tokenizer, vocabSize: p.model.config.vocabSize))
        case "confidence": verifier = .confidence(p.tokenizer, extractor: AnswerExtractor(rawValue: extractor ?? "last_number")!)
        default: verifier = nil
        }
        let set = try TaskData.load(data, reward: nil, chat: try p.chatTemplate(), whole: all)
        let out = try generations.map { path -> FileHandle in
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("--generations \(path): cannot create the file") }
            return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }
        defer { try? out?.close() }
        let config = SamplingConfig(temperature: temperature, maxNewTokens: maxNewTokens, seed: seed)
        let result = try evaluate(model: p.model, tokenizer: p.tokenizer, samples: set.eval, reward: set.reward,
                                  samplesPerPrompt: samples, config: config, rerank: verifier,
                                  progress: { done, total, seconds in
                                      // On stderr, so --json output stays one object.
                                      FileHandle.standardError.write(Data((EvalResult.progressLine(done: done, of: total, seconds: seconds) + "\n").utf8))
                                  }) { sample, c, score in
            guard let out else { return }
            let line: [String: Any] = ["prompt": sample.prompt, "answer": sample.answer ?? NSNull(), "sample": c.sampleIndex, "response": c.text,
                                       "reward": score.value, "components": score.components, "finish_reason": c.finishReason.rawValue]
            out.write(try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) + Data("\n".utf8))
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(result), as: UTF8.self))
        } else {
            print("tokenwise eval — \(modelOptions.model) on \(task) (difficulty \(difficulty)), temperature \(temperature)")
            print(result.summary)
        }
    }
}
