import Foundation

/// The `tokenwise credit` request: `{"method", "params", "progress"?, "groups": [...]}`.
public struct CreditRequest: Decodable, Sendable {
    public var config: CreditConfig
    public var batch: CreditBatch

    enum CodingKeys: String, CodingKey, CaseIterable { case method, params, progress, groups }

    /// A misspelled field would otherwise be dropped silently (and its method run without it).
    static func rejectUnknownFields<K: CodingKey & CaseIterable>(_ decoder: Decoder, _ keys: K.Type) throws {
        if let (bad, known) = try firstUnknownKey(decoder, keys) {
            let at = decoder.codingPath.isEmpty ? "" : DecodingErrorText.path(decoder.codingPath) + ": "
            throw CreditError("\(at)unknown field '\(bad)' (known: \(known.joined(separator: ", ")))")
        }
    }

    struct GroupJSON: Decodable {
        var id: String
        var trajectories: [TrajectoryJSON]
        var positionScores: [Double]?
        enum CodingKeys: String, CodingKey, CaseIterable { case id, trajectories, positionScores = "position_scores" }

        init(from decoder: Decoder) throws {
            try CreditRequest.rejectUnknownFields(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            trajectories = try c.decode([TrajectoryJSON].self, forKey: .trajectories)
            positionScores = try c.decodeIfPresent([Double].self, forKey: .positionScores)
        }
    }

    struct TrajectoryJSON: Decodable {
        var tokens: [Int]
        var reward: Double
        var logprobs: [Double]?, entropies: [Double]?, values: [Double]?, kl: [Double]?, ratios: [Double]?
        var stepRewards: [StepReward]?
        var segments: [Int]?
        var segmentValues: [Double]?
        var states: [StateMark]?
        var treePath: [String]?
        var planning: [Int]?
        var actionMask: [Bool]?
        var tokenRewards: [Double]?
        var turnRewards: [Double]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case tokens, reward, logprobs, entropies, values, kl, ratios, segments, states, planning
            case stepRewards = "step_rewards", segmentValues = "segment_values", treePath = "tree_path", actionMask = "action_mask"
            case tokenRewards = "token_rewards", turnRewards = "turn_rewards"
        }

        init(from decoder: Decoder) throws {
            try CreditRequest.rejectUnknownFields(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            tokens = try c.decode([Int].self, forKey: .tokens)
            reward = try c.decode(Double.self, forKey: .reward)
            func doubles(_ k: CodingKeys) throws -> [Double]? { try c.decodeIfPresent([Double].self, forKey: k) }
            logprobs = try doubles(.logprobs); entropies = try doubles(.entropies); values = try doubles(.values)
            kl = try doubles(.kl); ratios = try doubles(.ratios); segmentValues = try doubles(.segmentValues)
            tokenRewards = try doubles(.tokenRewards)
            turnRewards = try doubles(.turnRewards)
            stepRewards = try c.decodeIfPresent([StepReward].self, forKey: .stepRewards)
            segments = try c.decodeIfPresent([Int].self, forKey: .segments)
            states = try c.decodeIfPresent([StateMark].self, forKey: .states)
            treePath = try c.decodeIfPresent([String].self, forKey: .treePath)
            planning = try c.decodeIfPresent([Int].self, forKey: .planning)
            actionMask = try c.decodeIfPresent([Bool].self, forKey: .actionMask)
        }

        var trajectory: Trajectory {
            var t = Trajectory(tokens: tokens, reward: reward, logprobs: logprobs, entropies: entropies, values: values,
                               kl: kl, ratios: ratios, stepRewards: stepRewards, segments: segments,
                               segmentValues: segmentValues, states: states, treePath: treePath, planning: planning)
            t.actionMask = actionMask
            t.tokenRewards = tokenRewards
            t.turnRewards = turnRewards
            return t
        }
    }

    public init(config: CreditConfig, batch: CreditBatch) {
        self.config = config
        self.batch = batch
    }

    public init(from decoder: Decoder) throws {
        try Self.rejectUnknownFields(decoder, CodingKeys.self)
        config = try CreditConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let progress = try c.decodeIfPresent(Double.self, forKey: .progress) ?? 0
        let groups = try c.decode([GroupJSON].self, forKey: .groups)
        batch = CreditBatch(groups: groups.map { g in
            Group(id: g.id, trajectories: g.trajectories.map(\.trajectory), positionScores: g.positionScores)
        }, progress: progress)
    }

    /// Parses a request, turning decoding failures into messages that name the JSON path.
    public static func parse(_ data: Data, source: String = "input") throws -> CreditRequest {
        do {
            return try JSONDecoder().decode(CreditRequest.self, from: data)
        } catch let e as CreditError {
            throw CreditError("\(source): \(e.message)")
        } catch let e as DecodingError {
            throw CreditError("\(source): \(DecodingErrorText.describe(e, data: data, wholeNumbers: ["tokens", "index", "segments", "planning"]))")
        }
    }
}

/// Readable messages for JSON decoding failures, naming the path of the bad value
/// (`groups[0].trajectories[1].reward is missing`).
public enum DecodingErrorText {
    static func path(_ codingPath: [CodingKey]) -> String {
        var s = ""
        for key in codingPath {
            if let i = key.intValue { s += "[\(i)]" } else { s += s.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return s.isEmpty ? "the top level" : s
    }

    /// As `describe(_:)`, but when Foundation calls valid JSON "not valid JSON" (it does so for a
    /// number that does not fit an integer field, such as `1e30` or `1.5` as a token id), finds that
    /// number under one of `wholeNumbers`' keys and names it.
    public static func describe(_ e: DecodingError, data: Data, wholeNumbers: Set<String>) -> String {
        guard case .dataCorrupted(let ctx) = e, ctx.codingPath.isEmpty else { return describe(e) }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            // Its parser says where (JSONDecoder's does not).
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            return "not valid JSON (\(detail ?? ctx.debugDescription))"
        }
        if let (at, value) = firstNonInteger(root, path: "", keys: wholeNumbers, inKey: false) {
            return "\(at) is \(value); it must be a whole number (at most \(Int.max) in size)"
        }
        return "a number does not fit its field (a whole number was expected, or a value is out of range)"
    }

    static func firstNonInteger(_ v: Any, path: String, keys: Set<String>, inKey: Bool) -> (String, String)? {
        if let n = v as? NSNumber, inKey, String(describing: type(of: n)) != "__NSCFBoolean" {
            return Int(exactly: n.doubleValue) == nil || n.doubleValue.rounded() != n.doubleValue ? (path, "\(n)") : nil
        }
        if let list = v as? [Any] {
            for (k, x) in list.enumerated() { if let hit = firstNonInteger(x, path: "\(path)[\(k)]", keys: keys, inKey: inKey) { return hit } }
        }
        if let obj = v as? [String: Any] {
            for (k, x) in obj.sorted(by: { $0.key < $1.key }) {
                let sub = path.isEmpty ? k : "\(path).\(k)"
                if let hit = firstNonInteger(x, path: sub, keys: keys, inKey: keys.contains(k)) { return hit }
            }
        }
        return nil
    }

    public static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath + [key])) is missing"
        case .typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(ParamReader.describe(type))"
        case .valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)) must be \(ParamReader.describe(type)), not null"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "not valid JSON (\(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription))"
                : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default:
            return "\(e)"
        }
    }
}

/// The `tokenwise credit` response: per-trajectory advantages and weights, plus diagnostics.
public struct CreditResponse: Encodable {
    struct TrajectoryOut: Encodable { var advantages: [Double]; var weights: [Double] }
    struct GroupOut: Encodable { var id: String; var trajectories: [TrajectoryOut] }

    var method: String
    var groups: [GroupOut]
    var diagnostics: [String: Double]

    public init(request: CreditRequest, result: CreditResult) {
        method = request.config.method.rawValue
        groups = request.batch.groups.enumerated().map { g, group in
            GroupOut(id: group.id, trajectories: group.trajectories.indices.map { i in
                TrajectoryOut(advantages: result.advantages[g][i], weights: result.weights[g][i])
            })
        }
        diagnostics = result.diagnostics
    }

    /// The response as JSON; a non-finite result (inputs that overflow a double) is an error naming
    /// where it is, not an encoder failure.
    public func json(pretty: Bool = false) throws -> Data {
        for (g, group) in groups.enumerated() {
            for (i, t) in group.trajectories.enumerated() {
                for (name, values) in [("advantages", t.advantages), ("weights", t.weights)] {
                    if let k = values.firstIndex(where: { !$0.isFinite }) {
                        throw CreditError("groups[\(g)].trajectories[\(i)].\(name)[\(k)] is \(values[k]): the inputs overflow double precision")
                    }
                }
            }
        }
        if let bad = diagnostics.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isFinite }) {
            throw CreditError("diagnostic '\(bad.key)' is \(bad.value): the inputs overflow double precision")
        }
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return try enc.encode(self)
    }
}
