import Foundation
import Models

/// How to sample (names as in YAML, CLI and JSON). Repetition penalty is off (1) by default.
public struct SamplingConfig: Codable, Hashable, Sendable {
    /// 0 is greedy decoding.
    public var temperature = 1.0
    /// Keep the k most likely tokens (0: off).
    public var topK = 0
    /// Keep the smallest set of tokens whose probability reaches p (1: off).
    public var topP = 1.0
    /// Drop tokens below min_p × the top token's probability (0: off).
    public var minP = 0.0
    /// CTRL-style penalty on tokens already in the prompt or the response (1: off).
    public var repetitionPenalty = 1.0
    public var maxNewTokens = 256
    /// Generation stops once the decoded text contains one of these.
    public var stop: [String] = []
    /// Extra token ids that end a sequence (the tokenizer's end ids always do).
    public var stopTokenIds: [Int] = []
    /// Keep generating past the tokenizer's end ids (benchmarks).
    public var ignoreEos = false
    public var seed: UInt64 = 0
    /// How the temperature moves during decoding in training (evaluation always uses `temperature`).
    public var temperatureSchedule = TemperatureScheduleConfig()
    /// The rollout engine's weights: the learner's float32 ones, or a bf16 / int8 copy
    /// (`RolloutWeights`) that the sampler must hold.
    public var weights: WeightPrecision = .fp32
    /// `local` (this process's sampler) or `remote` (`remote`'s server; training only).
    public var engine: RolloutEngineKind = .local
    public var remote: RemoteEngineConfig? = nil

    public init(temperature: Double = 1, topK: Int = 0, topP: Double = 1, minP: Double = 0, repetitionPenalty: Double = 1,
                maxNewTokens: Int = 256, stop: [String] = [], stopTokenIds: [Int] = [], ignoreEos: Bool = false, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty; self.maxNewTokens = maxNewTokens; self.stop = stop
        self.stopTokenIds = stopTokenIds; self.ignoreEos = ignoreEos; self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case temperature, topK = "top_k", topP = "top_p", minP = "min_p", repetitionPenalty = "repetition_penalty"
        case maxNewTokens = "max_new_tokens", stop, stopTokenIds = "stop_token_ids", ignoreEos = "ignore_eos", seed
        case temperatureSchedule = "temperature_schedule", weights, engine, remote
    }

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw RolloutError("rollout: 'temperature' must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw RolloutError("rollout: 'top_k' must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw RolloutError("rollout: 'top_p' must be in (0, 1], got \(topP)") }
        guard (0..<1).contains(minP) else { throw RolloutError("rollout: 'min_p' must be in [0, 1), got \(minP)") }
        guard repetitionPenalty > 0 else { throw RolloutError("rollout: 'repetition_penalty' must be > 0, got \(repetitionPenalty)") }
        guard maxNewTokens > 0 else { throw RolloutError("rollout: 'max_new_tokens' must be positive, got \(maxNewTokens)") }
        if let empty = stop.firstIndex(of: "") { throw RolloutError("rollout: 'stop'[\(empty)] is an empty string") }
        try temperatureSchedule.validate()
        switch (engine, remote) {
        case (.remote, nil): throw RolloutError("rollout: 'engine' remote needs 'remote' (url: http://host:port of the inference server)")
        case (.remote, let r?): try r.validate()
        case (.local, _?): throw RolloutError("rollout: 'remote' is set but 'engine' is local; set engine: remote or remove it")
        case (.local, nil): break
        }
    }
}

/// `rollout.temperature_schedule`: `constant`, or HAPO's Adaptive Temperature Sampling
/// (arXiv:2509.16591 §9.2, `AdaptiveTemperature`) with τ = `tau` and the previous step's entropy
/// statistics (pivot quantile `entropy_pivot`, `sign_fix` as HAPO's ĥ); the first step samples at
/// the plain temperature.
public struct TemperatureScheduleConfig: Codable, Hashable, Sendable {
    public enum Name: String, Codable, CaseIterable, Sendable { case constant, adaptive }
    public var name: Name = .constant
    public var tau = 0.05
    public var entropyPivot = 0.8
    public var signFix = true

    public init(name: Name = .constant, tau: Double = 0.05, entropyPivot: Double = 0.8, signFix: Bool = true) {
        self.name = name; self.tau = tau; self.entropyPivot = entropyPivot; self.signFix = signFix
    }

    enum CodingKeys: String, CodingKey { case name, tau, entropyPivot = "entropy_pivot", signFix = "sign_fix" }

    public func validate() throws {
        guard tau >= 0, tau < 1 else { throw RolloutError("rollout: 'temperature_schedule.tau' must be in [0, 1), got \(tau)") }
        guard (0...1).contains(entropyPivot) else {
            throw RolloutError("rollout: 'temperature_schedule.entropy_pivot' must be in [0, 1], got \(entropyPivot)")
        }
    }
}

public struct RolloutError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Why a sequence ended.
public enum FinishReason: String, Codable, Sendable { case eos, stop, length }

/// One sampled response with what RL needs per token.
public struct Completion: Codable, Equatable, Sendable {
    public var promptIndex: Int
    public var sampleIndex: Int
    public var tokens: [Int]
    /// Log-probability under the distribution the token was actually drawn from (after
    /// temperature and truncation; 0 for greedy decoding).
    public var samplingLogprobs: [Double]
    /// Log-probability under the unmodified policy (temperature 1, no truncation): what importance
    /// ratios need.
    public var logprobs: [Double]
    /// Entropy of the unmodified policy's next-token distribution at each step.
    public var entropies: [Double]
    /// The temperature each token was sampled at.
    public var temperatures: [Double]
    public var finishReason: FinishReason
    /// Decoded response (cut before a matched stop string).
    public var text: String

    public init(promptIndex: Int, sampleIndex: Int, tokens: [Int], samplingLogprobs: [Double], logprobs: [Double], entropies: [Double],
                temperatures: [Double], finishReason: FinishReason, text: String) {
        self.promptIndex = promptIndex; self.sampleIndex = sampleIndex; self.tokens = tokens; self.samplingLogprobs = samplingLogprobs
        self.logprobs = logprobs; self.entropies = entropies; self.temperatures = temperatures; self.finishReason = finishReason; self.text = text
    }
}

/// Where training rollouts are sampled: in this process, or by an inference server over HTTP.
public enum RolloutEngineKind: String, Codable, CaseIterable, Sendable { case local, remote }

/// How the trainer talks to the server: vLLM's OpenAI-compatible routes (`/v1/completions`,
/// `/v1/load_lora_adapter`; also `tokenwise serve`), or SGLang's native ones (`/generate`,
/// `/load_lora_adapter`, `/unload_lora_adapter`; `tokenwise serve` answers them too).
public enum RemoteAPI: String, Codable, CaseIterable, Sendable { case openai, sglang }

/// `rollout.remote`: a server that samples the rollouts (`tokenwise serve`, vLLM or SGLang with
/// LoRA adapters enabled), sent token ids and returning token ids and logprobs. The API key is read
/// from the environment variable named here, never written into a run's files.
public struct RemoteEngineConfig: Codable, Hashable, Sendable {
    /// `http://host:port` (an optional path prefix before `/v1`).
    public var url = ""
    public var api = RemoteAPI.openai
    public var apiKeyEnv = "TOKENWISE_API_KEY"
    /// Seconds a request may take, and how many times a failed one is tried again (with backoff).
    public var timeout = 600.0
    public var retries = 3
    /// The name the trainer's adapter is loaded under on the server.
    public var adapterName = "tokenwise-policy"

    public init(url: String = "") { self.url = url }

    enum CodingKeys: String, CodingKey {
        case url, api, timeout, retries, apiKeyEnv = "api_key_env", adapterName = "adapter_name"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), d = RemoteEngineConfig()
        url = try c.decodeIfPresent(String.self, forKey: .url) ?? d.url
        api = try c.decodeIfPresent(RemoteAPI.self, forKey: .api) ?? d.api
        apiKeyEnv = try c.decodeIfPresent(String.self, forKey: .apiKeyEnv) ?? d.apiKeyEnv
        timeout = try c.decodeIfPresent(Double.self, forKey: .timeout) ?? d.timeout
        retries = try c.decodeIfPresent(Int.self, forKey: .retries) ?? d.retries
        adapterName = try c.decodeIfPresent(String.self, forKey: .adapterName) ?? d.adapterName
    }

    /// Host, port and path prefix of `url`.
    public func endpoint() throws -> (host: String, port: Int, prefix: String) {
        guard let u = URLComponents(string: url), let host = u.host, !host.isEmpty else {
            throw RolloutError("rollout: 'remote.url' must be http://host:port, got '\(url)'")
        }
        guard u.scheme == "http" else {
            throw RolloutError("rollout: 'remote.url' must use http (got '\(u.scheme ?? "")'); put a TLS-terminating proxy in front of the server for https")
        }
        var prefix = u.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if prefix.hasSuffix("/v1") { prefix.removeLast(3) }
        return (host, u.port ?? 80, prefix)
    }

    public func validate() throws {
        _ = try endpoint()
        guard timeout > 0, timeout <= 86_400 else { throw RolloutError("rollout: 'remote.timeout' must be in (0, 86400] seconds, got \(timeout)") }
        guard (0...20).contains(retries) else { throw RolloutError("rollout: 'remote.retries' must be 0…20, got \(retries)") }
        guard !adapterName.isEmpty else { throw RolloutError("rollout: 'remote.adapter_name' is empty") }
    }
}
