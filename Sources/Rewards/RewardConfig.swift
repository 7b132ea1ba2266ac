import Foundation

/// A reward as configuration (YAML/JSON): a weighted list of terms, e.g.
/// `{"terms": [{"type": "correct", "weight": 1, "extractor": "answer_tag"},
///             {"type": "format", "weight": 0.1}, {"type": "overlong", "max_length": 64, "cache": 16}]}`.
/// Every key is checked: an unknown type or key is an error naming the term.
public struct RewardConfig: Codable, Equatable, Sendable {
    public let terms: [Term]

    public struct Term: Codable, Equatable, Sendable {
        public let type: String
        public let weight: Double
        public let reward: RewardFunction
        /// The term's keys as written (numbers and strings), so the config writes back as it was read.
        let raw: [String: Scalar]

        enum Scalar: Codable, Equatable, Sendable {
            case number(Double), text(String)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
            }
            func encode(to encoder: Encoder) throws {
                var c = encoder.singleValueContainer()
                switch self {
                case .number(let d): if d == d.rounded(), abs(d) < 1e15 { try c.encode(Int(d)) } else { try c.encode(d) }
                case .text(let s): try c.encode(s)
                }
            }
        }

        public static func == (a: Term, b: Term) -> Bool { a.raw == b.raw }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(type, forKey: Key("type"))
            for k in raw.keys.sorted() where k != "type" { try c.encode(raw[k]!, forKey: Key(k)) }
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        static let keys: [String: Set<String>] = [
            "correct": ["extractor", "match", "tolerance", "correct", "incorrect"],
            "format": ["extractor"], "length": ["budget", "per_token"], "length_budget": ["budget", "decay", "every", "peak", "shape"],
            "overlong": ["max_length", "cache", "factor"], "countdown": ["step_reward"], "confidence": ["extractor"], "command": ["command", "timeout", "steps"], "http": ["url", "timeout", "steps"],
        ]

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            let where_ = "reward term \(c.codingPath.last?.intValue.map(String.init) ?? "?")"
            guard let type = try c.decodeIfPresent(String.self, forKey: Key("type")) else { throw RewardError("\(where_): missing 'type'") }
            guard let allowed = Self.keys[type] else {
                throw RewardError("\(where_): unknown type '\(type)' (known: \(Self.keys.keys.sorted().joined(separator: ", ")))")
            }
            for k in c.allKeys.map(\.stringValue) where k != "type" && k != "weight" && !allowed.contains(k) {
                throw RewardError("\(where_) ('\(type)'): unknown key '\(k)' (known: \((allowed.union(["weight"])).sorted().joined(separator: ", ")))")
            }
            func value<T: Decodable>(_ k: String, _ d: T) throws -> T {
                do { return try c.decodeIfPresent(T.self, forKey: Key(k)) ?? d } catch {
                    throw RewardError("\(where_) ('\(type)'): '\(k)' has the wrong type")
                }
            }
            func extractor() throws -> AnswerExtractor {
                let raw: String = try value("extractor", type == "format" ? "answer_tag" : "last_number")
                guard let e = AnswerExtractor(rawValue: raw) else {
                    throw RewardError("\(where_) ('\(type)'): extractor '\(raw)' is not one of last_number, boxed, answer_tag")
                }
                return e
            }
            // `steps: 1`: the external reward's replies carry step rewards (0, the default: they do not).
            func stepsFlag() throws -> Bool {
                let v: Double = try value("steps", 0.0)
                guard v == 0 || v == 1 else { throw RewardError("\(where_) ('\(type)'): 'steps' must be 1 (replies carry step rewards) or 0, got \(v)") }
                return v == 1
            }
            self.type = type
            weight = try value("weight", 1.0)
            var raw = [String: Scalar]()
            for k in c.allKeys { raw[k.stringValue] = try? c.decode(Scalar.self, forKey: k) }
            self.raw = raw
            switch type {
            case "correct":
                let m: String = try value("match", "numeric")
                guard let match = CorrectnessReward.Match(rawValue: m) else { throw RewardError("\(where_) ('correct'): match '\(m)' is not numeric or exact") }
                reward = CorrectnessReward(extractor: try extractor(), match: match, tolerance: try value("tolerance", 1e-6),
                                           correct: try value("correct", 1.0), incorrect: try value("incorrect", 0.0))
            case "format": reward = FormatReward(extractor: try extractor())
            case "confidence": reward = ConfidenceReward(extractor: try extractor())
            case "command":
                guard let command: String = try value("command", Optional<String>.none) else { throw RewardError("\(where_) ('command'): needs 'command' (the program and its arguments)") }
                reward = try CommandReward(command: command, timeout: try value("timeout", 30.0), steps: try stepsFlag())
            case "http":
                guard let url: String = try value("url", Optional<String>.none) else { throw RewardError("\(where_) ('http'): needs 'url' (http://host:port/path)") }
                reward = try HTTPReward(url: url, timeout: try value("timeout", 30.0), steps: try stepsFlag())
            case "length":
                guard let budget: Int = try value("budget", Optional<Int>.none) else { throw RewardError("\(where_) ('length'): missing 'budget'") }
                reward = LengthPenalty(budget: budget, perToken: try value("per_token", 0.01))
            case "length_budget":
                let raw: String = try value("shape", "triangular")
                guard let shape = LengthBudgetReward.Shape(rawValue: raw) else {
                    throw RewardError("\(where_) ('length_budget'): shape '\(raw)' is not triangular or band")
                }
                do {
                    reward = try LengthBudgetReward(budget: try value("budget", 256), decay: try value("decay", 0.7), every: try value("every", 150),
                                                    peak: try value("peak", 1.0), shape: shape)
                } catch let e as RewardError {
                    throw RewardError(e.message.replacingOccurrences(of: "reward term (", with: "\(where_) ("))
                }
            case "overlong":
                guard let maxLength: Int = try value("max_length", Optional<Int>.none), let cache: Int = try value("cache", Optional<Int>.none) else {
                    throw RewardError("\(where_) ('overlong'): needs 'max_length' and 'cache'")
                }
                guard cache > 0, cache <= maxLength else { throw RewardError("\(where_) ('overlong'): 'cache' must be in 1…max_length") }
                reward = OverlongShaping(maxLength: maxLength, cache: cache, factor: try value("factor", 1.0))
            default:
                reward = CountdownReward(stepReward: try value("step_reward", 1.0))
            }
        }
    }

    enum CodingKeys: String, CodingKey { case terms }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        terms = try c.decode([Term].self, forKey: .terms)
        guard !terms.isEmpty else { throw RewardError("reward: 'terms' is empty") }
    }

    /// The composed reward function.
    public var reward: CompositeReward { CompositeReward(terms.map { ($0.weight, $0.reward) }) }
}
