import ArgumentParser
import Foundation
import Models
import Rewards
import Rollout
import Training

/// `tokenwise pairs`: CRew-DPO's preference pairs from the model's own samples.
struct PairsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pairs",
        abstract: "Write CRew-DPO preference pairs (JSONL) from a model's own samples: right responses chosen over wrong ones with the largest confidence gap.",
        discussion: """
            Each training prompt gets --samples responses; every right one (the task reward's 'correct' term) is paired with every \
            wrong one and the --top-k pairs with the largest gap in CRew confidence (the mean probability of the answer's tokens) \
            are kept. `tokenwise train` with objective {name: dpo} and data.task set to the file trains on them.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var adapter: AdapterOption
    @Option(help: "A procedural task (arithmetic, countdown) or a JSONL file of {prompt, answer} lines.") var task = "arithmetic"
    @Option(help: "Procedural difficulty, 1…5.") var difficulty = 1
    @Option(help: "Training prompts to sample (held-out prompts are never used).") var prompts = 64
    @Option(help: "Responses per prompt.") var samples = 30
    @Option(name: .customLong("top-k"), help: "Pairs kept per prompt.") var topK = 10
    @Option(help: "crew (the largest confidence gaps) or random (one random right/wrong pair per prompt: the paper's DPO baseline).") var select = "crew"
    @Option(help: "signed (chosen − rejected confidence) or absolute.") var gap = "signed"
    @Option(help: "Where the answer is: last_number, boxed or answer_tag.") var extractor = "last_number"
    @Option(help: "Sampling temperature.") var temperature = 1.0
    @Option(name: .customLong("max-new-tokens"), help: "Most new tokens per response.") var maxNewTokens = 32
    @Option(help: "Seed of the task data (a training run's data.seed).") var dataSeed: UInt64 = 0
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @Option(help: "The pair file to write; it must not exist.") var out: String
    @Option(help: "Also write every distinct response as supervised {prompt, completion} lines, DIR/right.jsonl and DIR/wrong.jsonl (cDPO's positive and negative models train on them); DIR must not exist.")
    var traces: String?

    func options() throws -> CRewPairs.Options {
        var o = CRewPairs.Options()
        guard let s = CRewPairs.Selection(rawValue: select) else { throw ValidationError("--select must be crew or random, got '\(select)'") }
        guard let g = CRewPairs.Gap(rawValue: gap) else { throw ValidationError("--gap must be signed or absolute, got '\(gap)'") }
        guard let e = AnswerExtractor(rawValue: extractor) else { throw ValidationError("--extractor must be last_number, boxed or answer_tag, got '\(extractor)'") }
        guard (2...RunConfig.Limits.samples).contains(samples) else { throw ValidationError("--samples must be 2…\(RunConfig.Limits.samples) (a pair needs two responses), got \(samples)") }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be positive (pairs need different responses), got \(temperature)") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxNewTokens)") }
        guard (1...RunConfig.Limits.prompts).contains(prompts) else { throw ValidationError("--prompts must be 1…\(RunConfig.Limits.prompts), got \(prompts)") }
        (o.selection, o.gap, o.extractor, o.samples, o.topK) = (s, g, e, samples, topK)
        o.sampling = SamplingConfig(temperature: temperature, maxNewTokens: maxNewTokens, seed: seed)
        return o
    }

    func validate() throws {
        _ = try options()
        if FileManager.default.fileExists(atPath: out) { throw ValidationError("--out \(out) exists already (it is never overwritten)") }
        if let traces, FileManager.default.fileExists(atPath: traces) { throw ValidationError("--traces \(traces) exists already (it is never overwritten)") }
        if FileManager.default.fileExists(atPath: out + ".partial") {
            throw ValidationError("\(out).partial exists (an interrupted pairs run's?): remove it or choose another --out; it is never overwritten")
        }
    }

    func run() throws {
        let device = try runtime.apply(), o = try options()
        var data = RunConfig.DataSection()
        (data.task, data.difficulty, data.seed, data.trainSize) = (task, difficulty, dataSeed, prompts)
        let p = try modelOptions.load(device: device)
        try adapter.apply(to: p)
        // A file's answers are checked where --extractor finds them, as the confidence reads them; a
        // procedural task keeps its own reward.
        let reward = ProceduralTask(rawValue: task) != nil ? nil
            : try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [{"type": "correct", "extractor": "\#(extractor)"}]}"#.utf8))
        let set = try TaskData.load(data, reward: reward, chat: try p.chatTemplate())
        let chosen = try CRewPairs.prompts(set)
        let (pairs, mixed, sampled) = try CRewPairs.build(model: p.model, tokenizer: p.tokenizer, prompts: chosen, reward: set.reward, o) { done, total in
            FileHandle.standardError.write(Data("pairs: \(done)/\(total) prompts sampled\n".utf8))
        }
        guard !pairs.isEmpty else {
            throw TrainingError("pairs: no prompt had both a right and a wrong response among its \(samples) samples, so there is no pair to write (nothing written); "
                + "raise --samples, or use a task the model solves some of the time")
        }
        // Written apart, then moved into place: an interrupted run leaves no half file under --out.
        try JSONLines.writeNew(pairs.map(\.line), to: out)
        if let traces {
            try FileManager.default.createDirectory(atPath: traces, withIntermediateDirectories: true)
            for (name, right) in [("right", true), ("wrong", false)] {
                try JSONLines.writeNew(sampled.filter { $0.right == right }.map { ["prompt": $0.prompt, "completion": $0.text] }, to: traces + "/\(name).jsonl")
            }
            print("traces: \(sampled.filter(\.right).count) right and \(sampled.filter { !$0.right }.count) wrong responses → \(traces)/right.jsonl, \(traces)/wrong.jsonl")
        }
        func mean(_ v: [Double]) -> String { String(format: "%.3f", v.reduce(0, +) / Double(v.count)) }
        print("tokenwise pairs — \(pairs.count) pairs from \(mixed) of \(chosen.count) prompts with right and wrong responses; "
            + "mean confidence chosen \(mean(pairs.map(\.chosenConfidence))), rejected \(mean(pairs.map(\.rejectedConfidence))) → \(out)")
    }
}
