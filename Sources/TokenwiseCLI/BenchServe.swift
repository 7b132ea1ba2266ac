import ArgumentParser
import Foundation
import HTTP
import Models
import Rollout
import Serve
import Torch

struct BenchServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "tokenwise serve under load: N concurrent clients over loopback HTTP; tokens/s and p50/p99 latency against the in-process sampler in the same run.",
        discussion: "Each client sends --requests completions one after another (fixed prompts, temperature 1, --max-new-tokens each, end tokens ignored). "
            + "The baseline samples the same prompts in-process, --clients at a time."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var renamed: RenamedTokenLimit
    @Option(help: "Concurrent clients (and the server's batch).") var clients = 8
    @Option(help: "Requests per client.") var requests = 2
    @Option(name: .customLong("max-new-tokens"), help: "Tokens generated per request.") var newTokens = 64

    func validate() throws {
        guard (1...256).contains(clients), (1...1000).contains(requests), (1...4096).contains(newTokens) else {
            throw ValidationError("--clients 1…256, --requests 1…1000 and --max-new-tokens 1…4096")
        }
    }

    func run() throws {
        let device = try runtime.apply()
        let p = try modelOptions.load(device: device)
        let chat = try p.chatTemplate()
        let questions = ["What is the capital of France?", "Write a haiku about the sea.", "Explain photosynthesis briefly.", "What is 17 times 23?"]
        let prompts = (0..<(clients * requests)).map { p.tokenizer.encode(chat.render([ChatMessage(role: "user", content: questions[$0 % questions.count])], addGenerationPrompt: true)) }
        let context = prompts.map(\.count).max()! + newTokens
        // The baseline: the same prompts through the in-process sampler, `clients` at a time.
        let sampler = Sampler(model: p.model, tokenizer: p.tokenizer)
        let config = SamplingConfig(temperature: 1, maxNewTokens: newTokens, ignoreEos: true, seed: 0)
        let began = Date()
        for start in stride(from: 0, to: prompts.count, by: clients) {
            _ = try sampler.sample(prompts: Array(prompts[start..<Swift.min(prompts.count, start + clients)]), config: config)
        }
        let baseline = Double(prompts.count * newTokens) / Date().timeIntervalSince(began)
        var serve = ServeConfig()
        serve.port = 0
        serve.context = context
        serve.maxRows = clients
        serve.maxInFlight = Swift.max(64, clients)
        let server = try OpenAIServer(engine: try BatchEngine(sampler: sampler, maxRows: clients, context: context), template: chat, config: serve)
        let (port, stop) = try server.startInBackground()
        defer { stop() }
        let (seconds, latencies, failures) = load(port: port, prompts: prompts)
        let rate = Double((prompts.count - failures) * newTokens) / seconds
        let sorted = latencies.sorted()
        func pct(_ q: Double) -> Double { sorted.isEmpty ? .nan : sorted[Swift.min(sorted.count - 1, Int(q * Double(sorted.count)))] }
        print("tokenwise bench serve — \(p.source), \(clients) clients × \(requests) requests, \(newTokens) new tokens, \(Torch.threads) thread(s), \(device)")
        print("in-process sampler (\(clients) at a time): \(fmt(baseline, 1)) tokens/s")
        print("serve over HTTP: \(fmt(rate, 1)) tokens/s = \(fmt(rate / baseline, 2))× in-process; latency p50 \(fmt(pct(0.5), 3)) s, p99 \(fmt(pct(0.99), 3)) s"
              + (failures > 0 ? "; \(failures) request(s) failed" : ""))
        let rows = server.engine.rowsPerStep
        print("decode steps: \(rows.count), mean rows per step \(fmt(Double(rows.reduce(0, +)) / Double(Swift.max(rows.count, 1)), 2))")
    }

    /// Runs the clients; returns the wall time, each request's latency and the failures.
    func load(port: Int, prompts: [[Int]]) -> (Double, [Double], Int) {
        final class Results: @unchecked Sendable { var latencies: [Double] = []; var failures = 0; let lock = NSLock() }
        let results = Results(), (clients, requests, newTokens) = (self.clients, self.requests, self.newTokens)
        let began = Date(), group = DispatchGroup()
        // One thread per client (concurrentPerform would run only as many as there are cores).
        for c in 0..<clients {
            group.enter()
            Thread {
            defer { group.leave() }
            for r in 0..<requests {
                let t = Date()
                let body: [String: Any] = ["model": "tokenwise", "prompt": prompts[c * requests + r], "max_tokens": newTokens, "ignore_eos": true,
                                           "seed": c * requests + r]
                let ok = (try? http(port, "POST", "/v1/completions", json: body))?.status == 200
                results.lock.lock()
                if ok { results.latencies.append(Date().timeIntervalSince(t)) } else { results.failures += 1 }
                results.lock.unlock()
            }
            }.start()
        }
        group.wait()
        return (Date().timeIntervalSince(began), results.latencies, results.failures)
    }
}
