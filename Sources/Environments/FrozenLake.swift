import Foundation

/// FrozenLake as a text grid (after Gymnasium's FrozenLake-v1): walk from S to G over frozen
/// tiles F without falling into a hole H. Slippery ice moves the intended way with probability
/// 1/3 and to either side with 1/3 each. Maps are random (each tile frozen with probability
/// `frozenProbability`) and always have a path from S to G. Reward 1 on reaching G, else 0; an
/// invalid action costs `invalidPenalty` and leaves the agent where it is. `distanceReward` (off
/// by default, as Gymnasium and verl-agent) adds that much per tile a move brings P closer to G
/// and takes it per tile away: a difference of potentials (Ng et al. 1999, γ = 1), so an episode's
/// shaping sums to the distance it closed and cannot pay for walking in circles.
public final class FrozenLake: Environment {
    public struct Config: Codable, Equatable, Sendable {
        public var size = 4
        public var slippery = false
        public var frozenProbability = 0.8
        public var maxTurns = 8
        public var invalidPenalty = -0.1
        /// Actions must be exactly a move word (or one inside <action>…</action>); false: the first
        /// move word in the text counts.
        public var strictActions = false
        /// Reward per tile of Manhattan distance to G closed by a move (negative when it opens); 0: none.
        public var distanceReward = 0.0
        /// A fixed map (rows of S, F, H, G; S top left and G somewhere) instead of random ones.
        public var map: [String]? = nil
        public init(size: Int = 4, slippery: Bool = false, frozenProbability: Double = 0.8, maxTurns: Int = 8, invalidPenalty: Double = -0.1,
                    distanceReward: Double = 0, map: [String]? = nil) {
            self.size = size; self.slippery = slippery; self.frozenProbability = frozenProbability; self.maxTurns = maxTurns; self.invalidPenalty = invalidPenalty
            self.distanceReward = distanceReward; self.map = map
        }

        enum CodingKeys: String, CodingKey {
            case size, slippery, map, frozenProbability = "frozen_probability", maxTurns = "max_turns", invalidPenalty = "invalid_penalty", strictActions = "strict_actions"
            case distanceReward = "distance_reward"
        }

        /// Keys left away keep their defaults.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self), d = Config()
            size = try c.decodeIfPresent(Int.self, forKey: .size) ?? d.size
            slippery = try c.decodeIfPresent(Bool.self, forKey: .slippery) ?? d.slippery
            frozenProbability = try c.decodeIfPresent(Double.self, forKey: .frozenProbability) ?? d.frozenProbability
            maxTurns = try c.decodeIfPresent(Int.self, forKey: .maxTurns) ?? d.maxTurns
            invalidPenalty = try c.decodeIfPresent(Double.self, forKey: .invalidPenalty) ?? d.invalidPenalty
            strictActions = try c.decodeIfPresent(Bool.self, forKey: .strictActions) ?? d.strictActions
            distanceReward = try c.decodeIfPresent(Double.self, forKey: .distanceReward) ?? d.distanceReward
            map = try c.decodeIfPresent([String].self, forKey: .map)
        }

        /// A fixed map sets the size and the holes, so `size` and `frozen_probability` are written only without one.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            if map == nil { try c.encode(size, forKey: .size) }
            try c.encode(slippery, forKey: .slippery)
            if map == nil { try c.encode(frozenProbability, forKey: .frozenProbability) }
            try c.encode(maxTurns, forKey: .maxTurns)
            try c.encode(invalidPenalty, forKey: .invalidPenalty)
            try c.encode(strictActions, forKey: .strictActions)
            try c.encode(distanceReward, forKey: .distanceReward)
            try c.encodeIfPresent(map, forKey: .map)
        }

        public func validate() throws {
            guard map != nil || (4...8).contains(size) else { throw EnvironmentError("frozenlake: 'size' must be 4…8, got \(size)") }
            guard frozenProbability > 0.3 && frozenProbability <= 1 else { throw EnvironmentError("frozenlake: 'frozen_probability' must be in (0.3, 1], got \(frozenProbability)") }
            guard (1...100).contains(maxTurns) else { throw EnvironmentError("frozenlake: 'max_turns' must be 1…100, got \(maxTurns)") }
            guard invalidPenalty.isFinite && invalidPenalty <= 0 else { throw EnvironmentError("frozenlake: 'invalid_penalty' must be ≤ 0, got \(invalidPenalty)") }
            guard distanceReward.isFinite && (0...1).contains(distanceReward) else {
                throw EnvironmentError("frozenlake: 'distance_reward' must be in [0, 1] (0: none), got \(distanceReward)")
            }
            if let map {
                guard (2...8).contains(map.count), map.allSatisfy({ $0.count == map.count }) else {
                    throw EnvironmentError("frozenlake: 'map' must be a square of 2…8 rows of equal length, got \(map.map(\.count))")
                }
                guard map.joined().allSatisfy({ "SFHG".contains($0) }), map[0].first == "S", map.joined().filter({ $0 == "G" }).count == 1 else {
                    throw EnvironmentError("frozenlake: 'map' must use S, F, H, G only, start with S at the top left and have one G")
                }
            }
        }
    }

    public let config: Config
    public private(set) var map: [[Character]] = []
    public private(set) var position = (row: 0, col: 0)
    var rng = SplitMix64(seed: 0)

    public init(_ config: Config = Config()) throws {
        try config.validate()
        self.config = config
    }

    public var maxTurns: Int { config.maxTurns }
    public var instructions: String {
        "Frozen lake: P is you, G the goal, H a hole, F ice. Rows count from the top, columns from the left."
            + (config.slippery ? " The ice is slippery: you may slide to the side." : "")
    }

    /// The map and the agent's position as text, row by row.
    public var render: String {
        map.enumerated().map { r, row in String(row.enumerated().map { c, ch in (r, c) == position ? "P" : ch }) }.joined(separator: "\n")
    }

    /// The moves toward the goal corner come first: a small model's first answers lean to the
    /// words listed first, and an agent that never tries "down" never finds G to learn from.
    static let question = "Which way do you move? Answer with one word: down, right, up or left."

    /// The grid, then where P and G are in words (a small model reads coordinates more easily than
    /// it counts grid characters); the first one also asks the question, which later turns keep in
    /// context (short observations keep long episodes cheap).
    func observation(first: Bool = false) -> Observation {
        let place = "P: row \(position.row + 1), column \(position.col + 1). G: row \(goal.row + 1), column \(goal.col + 1)."
        return Observation(text: render + "\n" + place + (first ? "\n" + Self.question : ""), stateKey: "\(position.row),\(position.col)")
    }

    var goal: (row: Int, col: Int) {
        Array(map.joined()).firstIndex(of: "G").map { (row: $0 / map.count, col: $0 % map.count) } ?? (row: 0, col: 0)
    }

    /// Manhattan distance from P to G.
    var distance: Int { abs(goal.row - position.row) + abs(goal.col - position.col) }

    public func reset(seed: UInt64) throws -> Observation { try reset(seed: seed, episode: 0) }

    /// The seed draws the map; the slips are drawn from the seed and the episode, so the episodes
    /// of one seed share a map but not their luck.
    public func reset(seed: UInt64, episode: UInt64) throws -> Observation {
        var mapRNG = SplitMix64(seed: seed)
        map = config.map.map { $0.map(Array.init) } ?? Self.randomMap(size: config.size, frozen: config.frozenProbability, rng: &mapRNG)
        rng = SplitMix64(seed: seed ^ (episode &* 0xD1B5_4A32_D192_ED03) ^ 0x5851_F42D_4C95_7F2D)
        position = (0, 0)
        return observation(first: true)
    }

    /// A random map with S at the top left and G at the bottom right and a path between them
    /// (drawn again until one exists, as Gymnasium's `generate_random_map`).
    static func randomMap(size: Int, frozen: Double, rng: inout SplitMix64) -> [[Character]] {
        while true {
            var map = (0..<size).map { _ in (0..<size).map { _ -> Character in Double.random(in: 0..<1, using: &rng) < frozen ? "F" : "H" } }
            map[0][0] = "S"
            map[size - 1][size - 1] = "G"
            if Self.hasPath(map) { return map }
        }
    }

    static func hasPath(_ map: [[Character]]) -> Bool {
        let n = map.count
        var seen = Set([0]), frontier = [(0, 0)]
        while let (r, c) = frontier.popLast() {
            if map[r][c] == "G" { return true }
            for m in Move.allCases {
                let (nr, nc) = (r + m.delta.row, c + m.delta.col)
                guard (0..<n).contains(nr), (0..<n).contains(nc), map[nr][nc] != "H", !seen.contains(nr * n + nc) else { continue }
                seen.insert(nr * n + nc)
                frontier.append((nr, nc))
            }
        }
        return false
    }

    public func step(_ action: String) throws -> StepOutcome {
        guard !map.isEmpty else { throw EnvironmentError("frozenlake: step before reset") }
        guard let intended = Move.parse(action, strict: config.strictActions) else {
            return StepOutcome(observation: observation(), reward: config.invalidPenalty, done: false, valid: false, info: ["error": "not a move"])
        }
        var move = intended
        if config.slippery {
            let sides: [Move] = intended == .up || intended == .down ? [.left, .right] : [.up, .down]
            let draw = Int.random(in: 0..<3, using: &rng)
            if draw > 0 { move = sides[draw - 1] }
        }
        let n = map.count, before = distance
        position = (Swift.min(n - 1, Swift.max(0, position.row + move.delta.row)), Swift.min(n - 1, Swift.max(0, position.col + move.delta.col)))
        let tile = map[position.row][position.col]
        let info = ["moved": move.rawValue]
        let shaping = config.distanceReward * Double(before - distance)
        switch tile {
        case "G": return StepOutcome(observation: nil, reward: 1 + shaping, done: true, success: true, info: info)
        case "H": return StepOutcome(observation: nil, reward: shaping, done: true, info: info)
        default: return StepOutcome(observation: observation(), reward: shaping, done: false, info: info)
        }
    }
}
