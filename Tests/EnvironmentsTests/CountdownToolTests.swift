import Foundation
import Testing
@testable import Environments

/// Countdown with a calculator: the calculator's arithmetic and errors, a hand-played episode with a
/// tool call and an answer, and the rule that each number is used at most once.
@Suite struct CountdownToolTests {
    @Test func calculator() throws {
        #expect(try Arithmetic.evaluate("2 + 3 * 4") == 14)
        #expect(try Arithmetic.evaluate("(2 + 3) * 4") == 20)
        #expect(try Arithmetic.evaluate("8 / 4 / 2") == 1)
        #expect(try Arithmetic.evaluate("10 - 3 - 2") == 5)
        #expect(try Arithmetic.evaluate("-3 + 5 × 2") == 7)
        #expect(Arithmetic.format(2.5) == "2.5")
        #expect(Arithmetic.format(12) == "12")
        #expect(throws: EnvironmentError("division by zero")) { try Arithmetic.evaluate("4 / (2 - 2)") }
        #expect(throws: EnvironmentError("a '(' is not closed")) { try Arithmetic.evaluate("(1 + 2") }
        #expect(throws: EnvironmentError("unexpected 'x'")) { try Arithmetic.evaluate("3 x") }
        #expect(throws: EnvironmentError("parentheses nested too deep")) { try Arithmetic.evaluate(String(repeating: "(", count: 100) + "1") }
    }

    @Test func handPlayedEpisode() throws {
        let env = try CountdownTool(.init(numbers: 3, largest: 10))
        let start = try env.reset(seed: 4)
        #expect(start.text == "Numbers: \(env.numbers.map(String.init).joined(separator: ", ")). Target: \(env.target).")
        #expect(start.stateKey == "start")
        let (a, b) = (env.numbers[0], env.numbers[1])
        let tool = try env.step("Let me add: <calc>\(a) + \(b)</calc>")
        #expect(tool.observation == Observation(text: "\(a) + \(b) = \(a + b)", stateKey: "\(a) + \(b) = \(a + b)", role: "tool"))
        #expect(tool.valid && !tool.done && tool.reward == 0)
        let bad = try env.step("hmm")
        #expect(!bad.valid && bad.reward == -0.1 && !bad.done)
        // The reachable target's own construction is not known here: search the two-operation answers.
        let n = env.numbers.map(String.init)
        var solution: String?
        for ops in [("+", "+"), ("+", "-"), ("-", "+"), ("*", "+"), ("+", "*"), ("*", "*"), ("-", "*"), ("*", "-"), ("-", "-")] {
            for e in ["(\(n[0]) \(ops.0) \(n[1])) \(ops.1) \(n[2])", "(\(n[1]) \(ops.0) \(n[0])) \(ops.1) \(n[2])", "\(n[2]) \(ops.1) (\(n[0]) \(ops.0) \(n[1]))"]
            where (try? Arithmetic.evaluate(e)) == Double(env.target) { solution = e }
        }
        let answer = try #require(solution)
        let end = try env.step("<answer>\(answer)</answer>")
        #expect(end.done && end.success && end.reward == 1)
    }

    @Test func numbersAreUsedAtMostOnce() throws {
        #expect(CountdownTool.uses("3 + 4", only: [3, 4, 5]))
        #expect(!CountdownTool.uses("3 + 3", only: [3, 4, 5]))
        #expect(!CountdownTool.uses("3 + 7", only: [3, 4, 5]))
        let env = try CountdownTool()
        _ = try env.reset(seed: 1)
        let wrong = try env.step("<answer>\(env.target)</answer>")   // the target itself is not one of the numbers (in general)
        #expect(wrong.done && wrong.success == CountdownTool.uses("\(env.target)", only: env.numbers))
        #expect(throws: EnvironmentError("countdown: 'numbers' must be 2…5, got 9")) { try CountdownTool(.init(numbers: 9)) }
    }
}
