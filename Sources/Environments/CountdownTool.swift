import Foundation

/// Countdown with a calculator tool: reach the target from the numbers (each used at most once)
/// with + − × ÷ and parentheses. The model may call the calculator with `<calc>expression</calc>`;
/// the result comes back as a tool message. The episode ends with `<answer>expression</answer>`:
/// reward 1 when it uses only the given numbers (each at most once) and equals the target, else 0.
/// A turn with neither tag is invalid (`invalid_penalty`, and the episode goes on).
public final class CountdownTool: Environment {
    public struct Config: Codable, Equatable, Sendable {
        /// How many numbers (2…5), drawn from 1…`largest`.
        public var numbers = 3
        public var largest = 10
        public var maxTurns = 4
        public var invalidPenalty = -0.1
        public init(numbers: Int = 3, largest: Int = 10, maxTurns: Int = 4, invalidPenalty: Double = -0.1) {
            self.numbers = numbers; self.largest = largest; self.maxTurns = maxTurns; self.invalidPenalty = invalidPenalty
        }

        enum CodingKeys: String, CodingKey { case numbers, largest, maxTurns = "max_turns", invalidPenalty = "invalid_penalty" }

        /// Keys left away keep their defaults.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self), d = Config()
            numbers = try c.decodeIfPresent(Int.self, forKey: .numbers) ?? d.numbers
            largest = try c.decodeIfPresent(Int.self, forKey: .largest) ?? d.largest
            maxTurns = try c.decodeIfPresent(Int.self, forKey: .maxTurns) ?? d.maxTurns
            invalidPenalty = try c.decodeIfPresent(Double.self, forKey: .invalidPenalty) ?? d.invalidPenalty
        }

        public func validate() throws {
            guard (2...5).contains(numbers) else { throw EnvironmentError("countdown: 'numbers' must be 2…5, got \(numbers)") }
            guard (2...100).contains(largest) else { throw EnvironmentError("countdown: 'largest' must be 2…100, got \(largest)") }
            guard (1...20).contains(maxTurns) else { throw EnvironmentError("countdown: 'max_turns' must be 1…20, got \(maxTurns)") }
            guard invalidPenalty.isFinite && invalidPenalty <= 0 else { throw EnvironmentError("countdown: 'invalid_penalty' must be ≤ 0, got \(invalidPenalty)") }
        }
    }

    public let config: Config
    public private(set) var numbers: [Int] = [], target = 0
    var calls: [String] = []

    public init(_ config: Config = Config()) throws {
        try config.validate()
        self.config = config
    }

    public var maxTurns: Int { config.maxTurns }
    public var instructions: String {
        "Reach the target number using the given numbers, each at most once, with + - * / and parentheses. "
            + "You may use a calculator: write <calc>expression</calc> and its result comes back. Finish with <answer>expression</answer>."
    }

    var question: String { "Numbers: \(numbers.map(String.init).joined(separator: ", ")). Target: \(target)." }

    public func reset(seed: UInt64) throws -> Observation {
        var rng = SplitMix64(seed: seed)
        numbers = (0..<config.numbers).map { _ in Int.random(in: 1...config.largest, using: &rng) }
        // A target reachable by applying random + − × to the numbers in order.
        target = numbers[0]
        for x in numbers.dropFirst() {
            switch Int.random(in: 0...2, using: &rng) {
            case 0: target += x
            case 1: target = target > x ? target - x : target + x
            default: target = target * x <= 1000 ? target * x : target + x
            }
        }
        calls = []
        return Observation(text: question, stateKey: "start")
    }

    /// The text between `<tag>` and `</tag>`, if both are there.
    static func tagged(_ text: String, _ tag: String) -> String? {
        guard let open = text.range(of: "<\(tag)>"), let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }

    public func step(_ action: String) throws -> StepOutcome {
        guard !numbers.isEmpty else { throw EnvironmentError("countdown: step before reset") }
        if let answer = Self.tagged(action, "answer") {
            let ok = (try? Arithmetic.evaluate(answer)).map { abs($0 - Double(target)) < 1e-9 } == true && Self.uses(answer, only: numbers)
            return StepOutcome(observation: nil, reward: ok ? 1 : 0, done: true, success: ok, info: ["answer": answer])
        }
        if let expression = Self.tagged(action, "calc") {
            let result: String
            do { result = Arithmetic.format(try Arithmetic.evaluate(expression)) } catch { result = "error: \(error)" }
            calls.append("\(expression.trimmingCharacters(in: .whitespaces)) = \(result)")
            return StepOutcome(observation: Observation(text: calls.last!, stateKey: calls.joined(separator: "; "), role: "tool"), reward: 0, done: false)
        }
        return StepOutcome(observation: Observation(text: "Use <calc>…</calc> or <answer>…</answer>. " + question, stateKey: calls.joined(separator: "; ").isEmpty ? "start" : calls.joined(separator: "; ")),
                           reward: config.invalidPenalty, done: false, valid: false)
    }

    /// Whether every number written in `expression` is one of `numbers`, each used at most once.
    static func uses(_ expression: String, only numbers: [Int]) -> Bool {
        var left = numbers
        for token in expression.split(whereSeparator: { !$0.isNumber }) {
            guard let n = Int(token), let i = left.firstIndex(of: n) else { return false }
            left.remove(at: i)
        }
        return true
    }
}

/// A calculator over + − × ÷ and parentheses (the usual precedence, left to right).
public enum Arithmetic {
    public static func evaluate(_ text: String) throws -> Double {
        var p = Parser(chars: Array(text.replacingOccurrences(of: "×", with: "*").replacingOccurrences(of: "÷", with: "/").replacingOccurrences(of: "−", with: "-")))
        let v = try p.sum()
        p.skip()
        guard p.i == p.chars.count else { throw EnvironmentError("unexpected '\(p.chars[p.i])'") }
        guard v.isFinite else { throw EnvironmentError("the result is not finite") }
        return v
    }

    public static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.6g", v)
    }

    struct Parser {
        let chars: [Character]
        var i = 0, depth = 0
        mutating func skip() { while i < chars.count, chars[i] == " " { i += 1 } }
        mutating func sum() throws -> Double {
            var v = try product()
            while true {
                skip()
                guard i < chars.count, chars[i] == "+" || chars[i] == "-" else { return v }
                let op = chars[i]; i += 1
                let r = try product()
                v = op == "+" ? v + r : v - r
            }
        }
        mutating func product() throws -> Double {
            var v = try atom()
            while true {
                skip()
                guard i < chars.count, chars[i] == "*" || chars[i] == "/" else { return v }
                let op = chars[i]; i += 1
                let r = try atom()
                if op == "/" && r == 0 { throw EnvironmentError("division by zero") }
                v = op == "*" ? v * r : v / r
            }
        }
        mutating func atom() throws -> Double {
            skip()
            guard i < chars.count else { throw EnvironmentError("the expression ends early") }
            if chars[i] == "(" {
                depth += 1
                guard depth <= 64 else { throw EnvironmentError("parentheses nested too deep") }
                i += 1
                let v = try sum()
                skip()
                guard i < chars.count, chars[i] == ")" else { throw EnvironmentError("a '(' is not closed") }
                i += 1
                depth -= 1
                return v
            }
            if chars[i] == "-" { i += 1; return -(try atom()) }
            let start = i
            while i < chars.count, chars[i].isNumber || chars[i] == "." { i += 1 }
            guard i > start, let v = Double(String(chars[start..<i])) else { throw EnvironmentError("expected a number at position \(start + 1)") }
            return v
        }
    }
}
