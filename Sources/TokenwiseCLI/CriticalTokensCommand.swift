import ArgumentParser
import Foundation
import Models
import Training

/// `tokenwise critical-tokens`: cDPO's token weights written into a pair file.
struct CriticalTokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "critical-tokens",
        abstract: "Weight each rejected token of a pair file by cDPO's contrastive estimation between a positive and a negative model (for objective weighted_dpo).",
        discussion: """
            s_t = softmax((1 + β)·z⁺ − β·z⁻)[y_t] from the two models' logits; the rejected tokens weigh 1 − s_t and the chosen ones 1. \
            Train the positive and negative models with `tokenwise train --preset sft` on the right and the wrong responses \
            (`tokenwise pairs --traces DIR` writes both files), then train `objective: {name: weighted_dpo}` on the file this writes.
            """)

    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "The pair file ({prompt, chosen, rejected} lines).") var pairs: String
    @Option(help: "The model fine-tuned on right answers (a run's model/ folder, a .gguf file or a Hugging Face directory).") var positive: String
    @Option(help: "The model fine-tuned on wrong answers.") var negative: String
    @Option(help: "β of the contrast (1 in the authors' code).") var beta = 1.0
    @Option(help: "The weighted pair file to write; it must not exist.") var out: String

    func validate() throws {
        guard beta >= 0, beta.isFinite else { throw ValidationError("--beta must be ≥ 0 and finite, got \(beta)") }
        for p in [out, out + ".partial"] where FileManager.default.fileExists(atPath: p) { throw ValidationError("\(p) exists already (it is never overwritten)") }
    }

    func run() throws {
        let device = try runtime.apply()
        let set = try Dataset.load(URL(fileURLWithPath: pairs))
        let read = try zip(set.examples, set.lines).map { e, line -> PreferencePair in
            guard case .preference(let p) = e else { throw TrainingError("\(pairs):\(line): not a {prompt, chosen, rejected} pair") }
            if p.weights != nil { throw TrainingError("\(pairs):\(line): the pair has 'chosen_weights' and 'rejected_weights' already; they are never replaced") }
            return p
        }
        let pos = try Pretrained.load(positive, device: device), neg = try Pretrained.load(negative, device: device)
        guard pos.tokenizer.tokens == neg.tokenizer.tokens else { throw TrainingError("critical-tokens: --positive and --negative have different tokenizers; both must be fine-tuned from the policy") }
        let chat = try pos.chatTemplate()
        let weighted = try CriticalTokens.weighted(read, positive: pos.model, negative: neg.model, tokenizer: pos.tokenizer, beta: beta, chat: chat)
        try JSONLines.writeNew(weighted.map(Self.line), to: out)
        let w = weighted.flatMap { $0.weights!.rejected }
        print("tokenwise critical-tokens — \(weighted.count) pairs, \(w.count) rejected tokens, mean weight \(String(format: "%.3f", w.reduce(0, +) / Double(Swift.max(w.count, 1)))) → \(out)")
    }

    /// A pair as its file line, with its weights and any hallucination labels it had.
    static func line(_ p: PreferencePair) -> [String: Any] {
        var l: [String: Any] = ["prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected,
                                "chosen_weights": p.weights!.chosen, "rejected_weights": p.weights!.rejected]
        if let h = p.hallucinated { (l["h_w"], l["h_l"]) = (h.chosen ? 1 : 0, h.rejected ? 1 : 0) }
        return l
    }
}
