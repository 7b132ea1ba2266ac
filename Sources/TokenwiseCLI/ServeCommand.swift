import ArgumentParser
import Foundation
import Models
import Rollout
import Serve
import Torch

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "An OpenAI-compatible HTTP server on the Tokenwise sampler (continuous batching).",
        discussion: "Routes: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream: true for server-sent events). "
            + "It listens on 127.0.0.1; another --host needs an --api-key (or TOKENWISE_API_KEY), checked on every request."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: a free one, printed at start).") var port = 8000
    @Option(name: .customLong("api-key"), help: "Required as 'Authorization: Bearer KEY' on every request (default: TOKENWISE_API_KEY).")
    var apiKey: String?
    @Option(name: .customLong("served-model-name"), help: "The model name requests give.") var servedName = "tokenwise"
    @Option(help: "Most prompt + new tokens of one request.") var context = 1024
    @Option(name: .customLong("max-batch"), help: "Rows decoded together.") var maxBatch = 8
    @Option(name: .customLong("max-in-flight"), help: "Most choices queued or decoding; more get 429.") var maxInFlight = 1024
    @Option(name: .customLong("max-choices"), help: "Most choices (prompts × n) in one request.") var maxChoices = 512
    @Option(help: "Decode weights: fp32, or a bf16 / int8 copy.") var weights = "fp32"

    func validate() throws {
        guard WeightPrecision(rawValue: weights) != nil else { throw ValidationError("--weights must be fp32, bf16 or int8, got '\(weights)'") }
        guard (1...4096).contains(maxBatch) else { throw ValidationError("--max-batch must be 1…4096, got \(maxBatch)") }
    }

    /// libgomp reads its wait policy when it loads, before `main`: the server starts itself again
    /// with OMP_WAIT_POLICY=PASSIVE unless the environment sets one, because spinning OpenMP workers
    /// take the cores the HTTP threads need (bench serve: 147.8 → 165.6 tokens/s on 2 cores).
    static func restartWithPassiveOpenMP() {
        guard ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        // execv returned: it failed; serve with the inherited policy.
    }

    func run() throws {
        Self.restartWithPassiveOpenMP()
        var config = ServeConfig()
        config.host = host
        config.port = port
        config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["TOKENWISE_API_KEY"]
        config.modelName = servedName
        config.context = context
        config.maxRows = maxBatch
        config.maxInFlight = maxInFlight
        config.maxChoices = maxChoices
        config.weights = WeightPrecision(rawValue: weights)!
        do { try config.validate() } catch { throw ValidationError("\(error)") }
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        let precision = WeightPrecision(rawValue: weights)!
        let copy = precision == .fp32 ? nil : try RolloutWeights(p.model, precision: precision)
        let engine = try BatchEngine(sampler: Sampler(model: p.model, tokenizer: p.tokenizer, weights: copy), maxRows: maxBatch, context: context)
        let server = try OpenAIServer(engine: engine, template: try? p.chatTemplate(), config: config)
        let done = DispatchSemaphore(value: 0), outcome = Outcome()
        let (h, name, source) = (host, servedName, p.source)
        Task {
            do {
                try await server.run { port in
                    FileHandle.standardOutput.write(Data("tokenwise serve: \(name) (\(source), \(precision.rawValue) weights) on http://\(h):\(port)\n".utf8))
                }
            } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let e = outcome.error { throw e }
    }
}

final class Outcome: @unchecked Sendable { var error: Error? }
