import Environments
import Foundation
import Rewards

/// Procedural verifiable tasks generated from a seed, so training needs no download.
public enum ProceduralTask: String, Codable, Sendable, CaseIterable {
    /// "What is A op B?" with numbers of `difficulty` digits (1–5); + at levels 1–3, × above.
    case arithmetic
    /// Reach a target from 3–5 numbers (more at higher difficulty) with + − × ÷; always solvable.
    case countdown

    /// `count` problems; the same seed gives the same problems.
    public func samples(count: Int, difficulty: Int, seed: UInt64) throws -> [TaskSample] {
        guard (1...5).contains(difficulty) else { throw TrainingError("task '\(rawValue)': difficulty must be 1…5, got \(difficulty)") }
        guard count > 0 else { throw TrainingError("task '\(rawValue)': count must be positive, got \(count)") }
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in self == .arithmetic ? Self.arithmetic(&rng, difficulty) : Self.countdown(&rng, difficulty) }
    }

    /// The reward that verifies it: the answer in `<answer>` tags (or the last number), plus format.
    public var reward: CompositeReward {
        switch self {
        case .arithmetic: CompositeReward([(1, CorrectnessReward(extractor: .lastNumber)), (0.1, FormatReward(extractor: .lastNumber))])
        case .countdown: CompositeReward([(1, CountdownReward())])
        }
    }

    static func arithmetic(_ rng: inout SplitMix64, _ d: Int) -> TaskSample {
        let digits = d <= 3 ? d : d - 2
        let lo = digits == 1 ? 1 : Int(Foundation.pow(10, Double(digits - 1))), hi = Int(Foundation.pow(10, Double(digits))) - 1
        let a = rng.int(lo...hi), b = rng.int(lo...hi)
        let multiply = d > 3
        let q = "What is \(a) \(multiply ? "*" : "+") \(b)? Answer with just the number."
        return TaskSample(prompt: q, answer: String(multiply ? a * b : a + b))
    }

    static func countdown(_ rng: inout SplitMix64, _ d: Int) -> TaskSample {
        let n = Swift.min(5, 2 + (d + 1) / 2)
        let numbers = (0..<n).map { _ in rng.int(1...(d <= 2 ? 10 : 25)) }
        // A target reachable by applying random + − × to the numbers in order.
        var target = numbers[0]
        for x in numbers.dropFirst() {
            switch rng.int(0...2) {
            case 0: target += x
            case 1: target = target > x ? target - x : target + x
            default: target = target * x <= 1000 ? target * x : target + x
            }
        }
        let problem = String(decoding: try! JSONEncoder().encode(CountdownReward.Problem(numbers: numbers, target: target)), as: UTF8.self)
        let q = "Using the numbers \(numbers), each at most once, and + - * /, reach \(target). Write one step per line as 'a op b = c'."
        return TaskSample(prompt: q, answer: problem)
    }
}

/// SplitMix64 (one generator for the whole project: tasks, benchmarks, environments).
public typealias SplitMix64 = Environments.SplitMix64

extension SplitMix64 {
    /// A uniform integer in `r` (modulo bias is negligible for small ranges).
    public mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
}
