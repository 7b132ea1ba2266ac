import ArgumentParser
import Foundation
import Objectives
import Torch

struct ObjectiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "objective",
        abstract: "Evaluate a policy or preference loss and its gradient (JSON in, JSON out).",
        discussion: """
        Policy loss: {"objective": {ratio, eps_low, eps_high, seq_eps_low, seq_eps_high, clip, dual_clip,
          adaptive_clip, hybrid, prefix_min_variant, mismatch, aggregation, norm_constant, kl_coef,
          kl_estimator, entropy_coef, log_ratio_clamp}, "trajectories": [{"logprobs", "old_logprobs",
          "advantages", "rollout_logprobs"?, "ref_logprobs"?, "weights"?, "entropies"?, "turns"?}]}
        Preference loss: {"objective": {"name": dpo|ipo|tdpo1|tdpo2|tgdpo|sparsepo|weighted_dpo|fdpo|treg, "beta",
          "alpha", "delta"}, "pairs": [{"chosen": {"logprobs", "ref_logprobs", "weights"?, "kl"?, "kl_weights"?,
          "rm_logprobs"?, "hallucinated"? (1|0), "revision_rewards"? (treg)}, "rejected": {...}}]}
        Output: {"loss", "grad_logprobs" (d loss / d logprobs, from autograd), "metrics"}; pairs also get
        "token_rewards" (β·log π/π_ref per token).
        """
    )

    @Option(help: "Read the request from this file instead of standard input.")
    var input: String?

    @Option(help: "Precision of the computation: float64 or float32.")
    var dtype: String = "float64"

    @Flag(help: "Indent the output.")
    var pretty = false

    func validate() throws {
        guard let d = DType(name: dtype), d == .float64 || d == .float32 else {
            throw ValidationError("--dtype must be float64 or float32, got '\(dtype)'")
        }
    }

    func run() throws {
        let source = input ?? "stdin"
        let data: Data
        if let input {
            guard let d = FileManager.default.contents(atPath: input) else { throw ObjectiveError("\(input): cannot read the file") }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        let out: [String: Any]
        do {
            out = try ObjectiveJSON.evaluate(data, dtype: DType(name: dtype)!)
        } catch let e as ObjectiveError {
            throw ObjectiveError("\(source): \(e.message)")
        } catch let e as TorchError {
            throw ObjectiveError("\(source): \(e.message)")
        }
        let json: Data
        do { json = try ObjectiveJSON.encode(out, pretty: pretty) } catch let e as ObjectiveError { throw ObjectiveError("\(source): \(e.message)") }
        FileHandle.standardOutput.write(json)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
