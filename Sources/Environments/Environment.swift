import Foundation

/// What an agent sees at the start of a turn: the text shown to the model and a key naming the
/// environment state (equal keys are the same state: GiGPO's anchor states).
public struct Observation: Equatable, Sendable {
    public var text: String
    public var stateKey: String
    /// The chat role it is shown in: `user`, or `tool` for a tool's result.
    public var role: String
    public init(text: String, stateKey: String, role: String = "user") { self.text = text; self.stateKey = stateKey; self.role = role }
}

/// The result of one action.
public struct StepOutcome: Equatable, Sendable {
    /// The next observation (nil once the episode is done).
    public var observation: Observation?
    /// The environment's reward for this action (a penalty for an invalid one).
    public var reward: Double
    public var done: Bool
    /// Whether the action could be read and applied.
    public var valid: Bool
    /// Whether the episode has reached its goal (meaningful when done).
    public var success: Bool
    public var info: [String: String]

    public init(observation: Observation?, reward: Double, done: Bool, valid: Bool = true, success: Bool = false, info: [String: String] = [:]) {
        self.observation = observation; self.reward = reward; self.done = done; self.valid = valid; self.success = success; self.info = info
    }
}

public struct EnvironmentError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A multi-turn environment. `reset` starts an episode (the same seed gives the same episode);
/// `step` applies the model's action text. One instance runs one episode at a time.
public protocol Environment: AnyObject {
    /// The instructions shown once, before the first observation (how to act, the action format).
    var instructions: String { get }
    /// Turns after which an episode ends unfinished.
    var maxTurns: Int { get }
    func reset(seed: UInt64) throws -> Observation
    /// A reset for one of several episodes from the same seed: the same start (map, room, problem),
    /// with the environment's own randomness (FrozenLake's slips) drawn for this `episode`, so the
    /// episodes of a group are not played on identical noise. Deterministic environments need not
    /// implement it.
    func reset(seed: UInt64, episode: UInt64) throws -> Observation
    func step(_ action: String) throws -> StepOutcome
}

extension Environment {
    public func reset(seed: UInt64, episode: UInt64) throws -> Observation { try reset(seed: seed) }
}

/// SplitMix64 (Steele et al.): a small, fast, seeded generator, so environments (and the project's
/// synthetic data) are reproducible everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The four moves of the grid worlds, read from an action text.
public enum Move: String, CaseIterable, Sendable {
    case up, down, left, right

    var delta: (row: Int, col: Int) {
        switch self {
        case .up: (-1, 0)
        case .down: (1, 0)
        case .left: (0, -1)
        case .right: (0, 1)
        }
    }

    /// The move an action names: the text inside `<action>…</action>` when present, else the whole
    /// text, must be one of the four words (any case, surrounding spaces and a final period allowed).
    /// Not `strict`, a text that is not one word names the first of the four words it contains as a
    /// whole word ("I go up" is up), so a small model's loose answers still move.
    public static func parse(_ action: String, strict: Bool = true) -> Move? {
        var text = action
        if let open = text.range(of: "<action>"), let close = text.range(of: "</action>", range: open.upperBound..<text.endIndex) {
            text = String(text[open.upperBound..<close.lowerBound])
        }
        var word = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if word.hasSuffix(".") { word.removeLast() }
        if let m = Move(rawValue: word) { return m }
        guard !strict else { return nil }
        let words = word.split { !$0.isLetter }
        return words.lazy.compactMap { Move(rawValue: String($0)) }.first
    }
}
