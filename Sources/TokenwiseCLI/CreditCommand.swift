import ArgumentParser
import Credit
import Foundation

struct CreditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credit",
        abstract: "Per-token advantages and weights for a batch of trajectories (JSON in, JSON out).",
        discussion: """
        Input (stdin or --input): {"method": NAME, "params": {...}, "progress": 0..1,
          "groups": [{"id": "...", "position_scores": [float]?, "trajectories": [{"tokens": [int],
          "reward": float, "logprobs"?, "entropies"?, "values"?, "kl"?, "ratios"?: [float],
          "step_rewards"?: [{"index", "reward"}], "segments"?: [int], "segment_values"?: [float],
          "states"?: [{"index", "key"}], "tree_path"?: [string], "planning"?: [int]}]}]}
        Output: {"method", "groups": [{"id", "trajectories": [{"advantages", "weights"}]}], "diagnostics"}

        Methods: \(CreditMethod.allCases.map(\.rawValue).joined(separator: ", ")).
        `tokenwise credit --defaults NAME` prints a method's parameters with their defaults.
        """
    )

    @Option(help: "Read the request from this file instead of standard input.")
    var input: String?

    @Option(help: "Print the default parameters of this method and exit.")
    var defaults: String?

    @Flag(help: "Indent the output.")
    var pretty = false

    func run() throws {
        if let name = defaults {
            guard let method = CreditMethod(rawValue: name) else {
                throw ValidationError("--defaults: unknown method '\(name)' (known: \(CreditMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(CreditConfig(method: method)), as: UTF8.self))
            return
        }
        let data: Data
        let source: String
        if let input {
            guard let d = FileManager.default.contents(atPath: input) else {
                throw CreditError("\(input): cannot read the file")
            }
            data = d
            source = input
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
            source = "stdin"
        }
        let request = try CreditRequest.parse(data, source: source)
        let json: Data
        do {
            let result = try request.config.estimator.estimate(request.batch)
            json = try CreditResponse(request: request, result: result).json(pretty: pretty)
        } catch let e as CreditError {
            throw CreditError("\(source): \(e.message)")
        }
        FileHandle.standardOutput.write(json)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
