import ArgumentParser
import Credit
import Foundation
import Training

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

        Side by side: `tokenwise credit --compare grpo,tempo,FILE.json --samples RUN/samples.jsonl [--step N]`
        scores one step's recorded whole groups with each method (a name takes its defaults; a JSON file
        {"method", "params"} sets them) and prints each token's credit (advantage × weight) per method;
        --json prints it as JSON, --html FILE writes a page. The default step is the last one where a
        group's rewards differ.
        """
    )

    @Option(help: "Read the request from this file instead of standard input.")
    var input: String?

    @Option(help: "Print the default parameters of this method and exit.")
    var defaults: String?

    @Flag(help: "Indent the output.")
    var pretty = false

    @Option(help: "Score recorded rollouts with these methods, comma-separated: names or JSON files {\"method\", \"params\"}.")
    var compare: String?

    @Option(help: "With --compare: a run's samples.jsonl.")
    var samples: String?

    @Option(help: "With --compare: the step to score (default: the last where a group's rewards differ).")
    var step: Int?

    @Flag(help: "With --compare: print JSON instead of the table.")
    var json = false

    @Option(help: "With --compare: also write the side-by-side as an HTML page here.")
    var html: String?

    func validate() throws {
        if compare == nil, samples != nil || step != nil || json || html != nil {
            throw ValidationError("--samples, --step, --json and --html go with --compare METHODS")
        }
        if compare != nil {
            guard samples != nil else { throw ValidationError("--compare needs --samples RUN/samples.jsonl (the recorded rollouts to score)") }
            guard input == nil, defaults == nil else { throw ValidationError("--compare scores recorded rollouts; it takes no --input or --defaults") }
        }
    }

    func run() throws {
        if let compare, let samples { return try sideBySide(compare, samples: samples) }
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

    /// `--compare`: one step's recorded groups scored by every listed method.
    func sideBySide(_ list: String, samples: String) throws {
        let methods = try list.split(separator: ",").map { try Self.method(String($0).trimmingCharacters(in: .whitespaces)) }
        guard !methods.isEmpty else { throw ValidationError("--compare: list at least one method") }
        let url = URL(fileURLWithPath: samples)
        let records = try CreditSideBySide.read(samples: url)
        guard let chosen = step ?? CreditSideBySide.informativeStep(records) else { throw ValidationError("\(samples): no records to score") }
        let view = try CreditSideBySide(records: records, step: chosen, methods: methods, source: samples)
        if let html {
            guard !FileManager.default.fileExists(atPath: html) else { throw ValidationError("--html \(html) exists already: give a new path (nothing is overwritten)") }
            try Data(view.page.utf8).write(to: URL(fileURLWithPath: html))
        }
        if json { print(String(decoding: try view.json(), as: UTF8.self)) } else { print(view.text, terminator: "") }
    }

    /// A method name (default params) or a JSON file `{"method", "params"}`.
    static func method(_ spec: String) throws -> CreditSideBySide.Method {
        if let m = CreditMethod(rawValue: spec) { return .init(label: spec, config: CreditConfig(method: m)) }
        guard spec.hasSuffix(".json") || FileManager.default.fileExists(atPath: spec) else {
            throw ValidationError("--compare: '\(spec)' is neither a method (\(CreditMethod.allCases.map(\.rawValue).joined(separator: ", "))) nor a JSON file")
        }
        guard let data = FileManager.default.contents(atPath: spec) else { throw ValidationError("--compare: \(spec): cannot read the file") }
        do {
            let c = try JSONDecoder().decode(CreditConfig.self, from: data)
            return .init(label: URL(fileURLWithPath: spec).deletingPathExtension().lastPathComponent, config: c)
        } catch let e as CreditError {
            throw ValidationError("--compare: \(spec): \(e.message)")
        } catch let e as DecodingError {
            throw ValidationError("--compare: \(spec): \(DecodingErrorText.describe(e))")
        }
    }
}
