import Foundation
import XCTest
@testable import Rewards
@testable import Training

final class TaskTests: XCTestCase {
    func testArithmeticIsSeededAndCorrect() throws {
        let a = try ProceduralTask.arithmetic.samples(count: 20, difficulty: 2, seed: 5)
        XCTAssertEqual(a, try ProceduralTask.arithmetic.samples(count: 20, difficulty: 2, seed: 5))
        XCTAssertNotEqual(a, try ProceduralTask.arithmetic.samples(count: 20, difficulty: 2, seed: 6))
        for s in a {
            let nums = s.prompt.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            XCTAssertEqual(nums.count, 2)
            XCTAssertTrue(nums.allSatisfy { (10...99).contains($0) }, s.prompt)
            XCTAssertEqual(s.answer, String(nums[0] + nums[1]))
            // The task's reward accepts its own answer.
            XCTAssertEqual(ProceduralTask.arithmetic.reward.score(RewardInput(response: "It is \(s.answer!).", answer: s.answer)).value, 1.1, accuracy: 1e-12)
        }
        let hard = try ProceduralTask.arithmetic.samples(count: 5, difficulty: 4, seed: 1)
        XCTAssertTrue(hard.allSatisfy { $0.prompt.contains("*") })
    }

    /// Can `numbers` (each at most once) reach `target`?
    func solvable(_ numbers: [Double], _ target: Double) -> Bool {
        if numbers.contains(where: { Swift.abs($0 - target) < 1e-9 }) { return true }
        for i in numbers.indices { for j in numbers.indices where i != j {
            var rest = numbers.enumerated().filter { $0.offset != i && $0.offset != j }.map(\.element)
            let (a, b) = (numbers[i], numbers[j])
            for r in [a + b, a - b, a * b] + (b != 0 ? [a / b] : []) {
                rest.append(r)
                if solvable(rest, target) { return true }
                rest.removeLast()
            }
        } }
        return false
    }

    func testCountdownProblemsAreSolvable() throws {
        for d in 1...5 {
            for s in try ProceduralTask.countdown.samples(count: 4, difficulty: d, seed: UInt64(d)) {
                let p = try JSONDecoder().decode(CountdownReward.Problem.self, from: Data(s.answer!.utf8))
                XCTAssertEqual(p.numbers.count, Swift.min(5, 2 + (d + 1) / 2))
                XCTAssertTrue(solvable(p.numbers.map(Double.init), Double(p.target)), "\(p)")
                XCTAssertTrue(s.prompt.contains("reach \(p.target)"))
            }
        }
    }

    func testBadTaskSettings() {
        XCTAssertThrowsError(try ProceduralTask.countdown.samples(count: 1, difficulty: 6, seed: 0)) {
            XCTAssertEqual("\($0)", "task 'countdown': difficulty must be 1…5, got 6")
        }
        XCTAssertThrowsError(try ProceduralTask.arithmetic.samples(count: 0, difficulty: 1, seed: 0)) {
            XCTAssertEqual("\($0)", "task 'arithmetic': count must be positive, got 0")
        }
    }
}
