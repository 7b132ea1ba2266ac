import Foundation

/// The countdown game: reach `target` from `numbers` (each used at most once, intermediate results
/// reusable) with + − × ÷. Solutions are written one step per line as `a op b = c`.
/// The reward is rule-based per step, for process-reward methods such as PURE: every line that
/// parses as an equation gets +1 when its arithmetic is right and its operands are available, else
/// −1, placed at the end of the line. The outcome is 1 when the last valid step reaches the target
/// and every step was valid, else 0. The reference `answer` is `{"numbers": [..], "target": T}`.
public struct CountdownReward: RewardFunction {
    public var stepReward: Double
    public var name: String { "countdown" }
    public var givesStepRewards: Bool { stepReward != 0 }

    public init(stepReward: Double = 1) { self.stepReward = stepReward }

    public struct Problem: Codable, Equatable, Sendable {
        public var numbers: [Int]
        public var target: Int
        public init(numbers: [Int], target: Int) { self.numbers = numbers; self.target = target }
    }

    /// `a op b = c` in a line (op one of + - * / x × ÷ −), or nil.
    static func equation(_ line: Substring) -> (Double, Character, Double, Double)? {
        let normalized = line.replacingOccurrences(of: "×", with: "*").replacingOccurrences(of: "÷", with: "/")
            .replacingOccurrences(of: "−", with: "-").replacingOccurrences(of: " x ", with: " * ")
        let sides = normalized.split(separator: "=", omittingEmptySubsequences: false)
        guard sides.count == 2, let c = Double(sides[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "."))) else { return nil }
        let lhs = sides[0].trimmingCharacters(in: .whitespaces)
        for op in ["+", "*", "/", "-"] {
            // The operator after the first operand (so "-3 + 4" keeps its sign).
            guard let r = lhs.range(of: op, range: lhs.index(lhs.startIndex, offsetBy: lhs.hasPrefix("-") ? 1 : 0)..<lhs.endIndex) else { continue }
            guard let a = Double(lhs[..<r.lowerBound].trimmingCharacters(in: .whitespaces)),
                  let b = Double(lhs[r.upperBound...].trimmingCharacters(in: .whitespaces)) else { continue }
            return (a, Character(op), b, c)
        }
        return nil
    }

    public func score(_ input: RewardInput) -> RewardScore {
        guard let data = input.answer?.data(using: .utf8), let problem = try? JSONDecoder().decode(Problem.self, from: data) else {
            return RewardScore(value: 0, components: ["valid_steps": 0])
        }
        var available = problem.numbers.map(Double.init)
        var steps = [StepScore](), allValid = true, last: Double? = nil, valid = 0
        var offset = 0
        for line in input.response.split(separator: "\n", omittingEmptySubsequences: false) {
            offset += line.utf8.count
            defer { offset += 1 }   // the newline
            guard let (a, op, b, c) = Self.equation(line) else { continue }
            let result: Double? = switch op {
            case "+": a + b
            case "-": a - b
            case "*": a * b
            default: b == 0 ? nil : a / b
            }
            var ok = result.map { Swift.abs($0 - c) < 1e-9 } ?? false
            if ok, let i = available.firstIndex(of: a) {
                available.remove(at: i)
                if let j = available.firstIndex(of: b) { available.remove(at: j); available.append(c) } else { ok = false }
            } else {
                ok = false
            }
            steps.append(StepScore(offset: Swift.max(0, offset - 1), reward: ok ? stepReward : -stepReward))
            if ok { valid += 1; last = c } else { allValid = false }
        }
        let solved = allValid && last.map { Swift.abs($0 - Double(problem.target)) < 1e-9 } == true
        return RewardScore(value: solved ? 1 : 0, components: ["valid_steps": Double(valid)], steps: steps)
    }
}
