import Foundation
import Rewards

/// An environment in another process speaking JSON lines on stdin/stdout, so Python gyms plug in
/// without Python inside Tokenwise. Each request is one line, each reply one line:
///
///     → {"op": "reset", "seed": 7}
///     ← {"observation": "…", "state": "…", "instructions": "…"}          (instructions: optional)
///     → {"op": "step", "action": "…"}
///     ← {"observation": "…" or null, "state": "…", "reward": 0.0, "done": false, "valid": true, "success": false}
///
/// A reply that is late, not JSON, or missing a field, and a process that exits, are errors
/// naming the command, the request and the line; the process is stopped then.
public final class ProcessEnvironment: Environment {
    public struct Config: Codable, Equatable, Sendable {
        public var command: [String]
        public var maxTurns = 8
        public var timeoutSeconds = 30.0
        public init(command: [String], maxTurns: Int = 8, timeoutSeconds: Double = 30) {
            self.command = command; self.maxTurns = maxTurns; self.timeoutSeconds = timeoutSeconds
        }
        enum CodingKeys: String, CodingKey { case command, maxTurns = "max_turns", timeoutSeconds = "timeout_seconds" }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            command = try c.decode([String].self, forKey: .command)
            maxTurns = try c.decodeIfPresent(Int.self, forKey: .maxTurns) ?? 8
            timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? 30
        }
    }

    public let config: Config
    public private(set) var instructions = ""
    let process: JSONLinesProcess
    var name: String { config.command.joined(separator: " ") }

    public init(_ config: Config) throws {
        guard !config.command.isEmpty else { throw EnvironmentError("environment: 'command' is empty") }
        guard (1...1000).contains(config.maxTurns) else { throw EnvironmentError("environment: 'max_turns' must be 1…1000, got \(config.maxTurns)") }
        guard config.timeoutSeconds > 0 && config.timeoutSeconds <= 3600 else {
            throw EnvironmentError("environment: 'timeout_seconds' must be in (0, 3600], got \(config.timeoutSeconds)")
        }
        self.config = config
        process = JSONLinesProcess(command: config.command, timeout: config.timeoutSeconds, label: "environment `\(config.command.joined(separator: " "))`",
                                   error: { EnvironmentError($0) })
    }

    public var maxTurns: Int { config.maxTurns }

    func request(_ object: [String: Any], what: String) throws -> [String: Any] { try process.request(object, what: what) }

    /// Stops the process (it is started again by the next reset).
    public func stop() { process.stop() }

    func observation(_ json: [String: Any], what: String) throws -> Observation? {
        if json["observation"] == nil || json["observation"] is NSNull { return nil }
        guard let text = json["observation"] as? String else { throw EnvironmentError("environment `\(name)`: \(what) reply: 'observation' must be a string or null") }
        guard let key = json["state"] as? String else { throw EnvironmentError("environment `\(name)`: \(what) reply: 'state' (a string) is missing") }
        return Observation(text: text, stateKey: key)
    }

    public func reset(seed: UInt64) throws -> Observation { try reset(seed: seed, episode: 0) }

    /// `episode` numbers the episodes of one seed, for an environment with randomness of its own.
    public func reset(seed: UInt64, episode: UInt64) throws -> Observation {
        let json = try request(["op": "reset", "seed": seed, "episode": episode], what: "reset")
        guard let first = try observation(json, what: "reset") else { throw EnvironmentError("environment `\(name)`: reset reply: 'observation' is missing") }
        if let text = json["instructions"] as? String { instructions = text }
        return first
    }

    public func step(_ action: String) throws -> StepOutcome {
        let json = try request(["op": "step", "action": action], what: "step")
        func number(_ key: String) throws -> Double {
            guard let v = json[key] as? NSNumber, v.doubleValue.isFinite else {
                throw EnvironmentError("environment `\(name)`: step reply: '\(key)' must be a finite number")
            }
            return v.doubleValue
        }
        func flag(_ key: String, _ fallback: Bool?) throws -> Bool {
            guard let v = json[key] else {
                guard let fallback else { throw EnvironmentError("environment `\(name)`: step reply: '\(key)' (true or false) is missing") }
                return fallback
            }
            guard let b = v as? Bool else { throw EnvironmentError("environment `\(name)`: step reply: '\(key)' must be true or false") }
            return b
        }
        let done = try flag("done", nil)
        let next = try observation(json, what: "step")
        guard done || next != nil else { throw EnvironmentError("environment `\(name)`: step reply: 'observation' is missing and 'done' is false") }
        return StepOutcome(observation: done ? nil : next, reward: try number("reward"), done: done, valid: try flag("valid", true),
                           success: try flag("success", false))
    }
}
