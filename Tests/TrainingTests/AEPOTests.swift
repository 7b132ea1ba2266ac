import Foundation
import Models
import Rewards
import Rollout
import XCTest
@testable import Training

/// AEPO: the official code's numbers (fixture), values by hand, the shaping of a step's rollouts,
/// runs from YAML with the state resumed, and the configs it refuses.
final class AEPOTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Expected: Decodable {
                let percentiles: [Double], counts: [Int], threshold: Double, difficulty: [String], targets: [String: Double], alpha: [String: Double], scores: [Double]
            }
            let window: Int, percentile: Double, reading: String, threshold: Double?, alpha: [String: Double]
            let group_sizes: [Int], accuracy: [Double], entropies: [[Double]], words: [[String]], expected: Expected
        }
        let triggers: [String], cases: [Case]
    }

    /// scripts/reference/aepo_official.py re-implements shawn0728/ARES @146620e's window entropy,
    /// threshold, buckets and reward shaping; Tokenwise's functions give the same numbers.
    func testTheOfficialCodesNumbers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aepo_official.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 16)
        let words = Set(fixture.triggers)
        for (k, c) in fixture.cases.enumerated() {
            var config = AEPOConfig()
            config.window = c.window
            config.percentile = c.percentile
            config.reading = AEPOConfig.Reading(rawValue: c.reading)!
            let p = c.entropies.map { AEPO.percentile(AEPO.windowMeans($0, window: c.window), c.percentile) }
            assertNear(p, c.expected.percentiles, accuracy: 1e-12, "case \(k)")
            let (used, next) = AEPO.threshold(prior: c.threshold, percentiles: p, decay: 0.99)
            XCTAssertEqual(next, c.expected.threshold, accuracy: 1e-12, "case \(k)")
            let counts = zip(c.entropies, c.words).map { AEPO.count($0, trigger: $1.map(words.contains), threshold: used, window: c.window) }
            XCTAssertEqual(counts, c.expected.counts, "case \(k)")
            var groups = [(passRate: Double, meanCount: Double)](), row = 0
            for n in c.group_sizes {
                groups.append((c.accuracy[row..<(row + n)].reduce(0, +) / Double(n), Double(counts[row..<(row + n)].reduce(0, +)) / Double(n)))
                row += n
            }
            let alpha = Dictionary(uniqueKeysWithValues: c.alpha.map { (AEPO.Difficulty(rawValue: $0.key)!, $0.value) })
            let (difficulty, targets, after) = AEPO.buckets(groups, alpha: alpha, config: config)
            XCTAssertEqual(difficulty.map(\.rawValue), c.expected.difficulty, "case \(k)")
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: targets.map { ($0.key.rawValue, $0.value) }), c.expected.targets, "case \(k)")
            for (d, a) in c.expected.alpha { XCTAssertEqual(after[AEPO.Difficulty(rawValue: d)!]!, a, accuracy: 1e-12, "case \(k) \(d)") }
            var scores = [Double](), i = 0
            for (g, n) in c.group_sizes.enumerated() {
                for _ in 0..<n {
                    let d = difficulty[g], right = c.accuracy[i] == 1
                    scores.append(config.reading == .released
                                  ? AEPO.score(correct: right, .easy, count: Double(counts[i]), target: 0, alpha: 0.5)
                                  : AEPO.score(correct: right, d, count: Double(counts[i]), target: targets[d]!, alpha: after[d]!))
                    i += 1
                }
            }
            assertNear(scores, c.expected.scores, accuracy: 1e-12, "case \(k)")
        }
    }

    /// Each branch of the shaping by hand.
    func testTheShapingByHand() {
        // easy, right, T 5, n 9, α 0.5: m = max(1, 0.75) = 1, over 3, H(3; κ 2) = 2, 2/3·0.5.
        XCTAssertEqual(AEPO.score(correct: true, .easy, count: 9, target: 5, alpha: 0.5), -1.0 / 3, accuracy: 1e-12)
        // … within the margin: no penalty; too few triggers are not penalised when easy.
        XCTAssertEqual(AEPO.score(correct: true, .easy, count: 6, target: 5, alpha: 0.5), 0, accuracy: 1e-12)
        XCTAssertEqual(AEPO.score(correct: true, .easy, count: 0, target: 5, alpha: 0.5), 0, accuracy: 1e-12)
        // medium, right: |δ| counts, so too few are penalised too: T 8, n 2, m 2, dev 4, H(4; 3) = 2.5, 2.5/5·1.
        XCTAssertEqual(AEPO.score(correct: true, .medium, count: 2, target: 8, alpha: 1), -0.5, accuracy: 1e-12)
        // The penalty is capped at α: T 0, n 40, m 1, H(39; 2) = 38, 38/3 > 1.
        XCTAssertEqual(AEPO.score(correct: true, .easy, count: 40, target: 0, alpha: 0.7), -0.7, accuracy: 1e-12)
        // medium, wrong: T 2, n 5, α 1: m 1, over 2, σ(2/2.5)·0.8.
        XCTAssertEqual(AEPO.score(correct: false, .medium, count: 5, target: 2, alpha: 1), 0.8 / (1 + exp(-0.8)), accuracy: 1e-12)
        // easy, wrong, no triggers: σ(0) = ½, so ½·α·0.6.
        XCTAssertEqual(AEPO.score(correct: false, .easy, count: 0, target: 3, alpha: 0.5), 0.15, accuracy: 1e-12)
        // hard, right at δ ≥ −m: T 4, n 3, m 1.4, σ(0.4/3)·1.2·0.5.
        XCTAssertEqual(AEPO.score(correct: true, .hard, count: 3, target: 4, alpha: 0.5), 0.6 / (1 + exp(-0.4 / 3)), accuracy: 1e-12)
        // hard, right, far too few: T 10, n 2, m 3.5, −δ − m = 4.5, H(4.5; 4) = 2.5, −½·2.5/7.5·0.6.
        XCTAssertEqual(AEPO.score(correct: true, .hard, count: 2, target: 10, alpha: 0.5), -0.1, accuracy: 1e-12)
        // hard, wrong: T 1, n 1: ½·1.2·0.5.
        XCTAssertEqual(AEPO.score(correct: false, .hard, count: 1, target: 1, alpha: 0.5), 0.3, accuracy: 1e-12)
        // α = 0 removes every shaping: the reward is the base method's.
        for d in AEPO.Difficulty.allCases {
            for right in [true, false] { XCTAssertEqual(AEPO.score(correct: right, d, count: 7, target: 2, alpha: 0), 0) }
        }
        // The buckets' edges are the official ≥ 2/3 and ≥ 1/3.
        XCTAssertEqual([1, 2.0 / 3, 0.5, 1.0 / 3, 0.2].map { AEPO.Difficulty(passRate: $0) }, [.easy, .easy, .medium, .medium, .hard])
        XCTAssertEqual(AEPO.normalized("ĠWait"), "wait")
        XCTAssertEqual(AEPO.normalized(" But\n"), "but")
        XCTAssertEqual(AEPO.normalized("▁▁Hmm"), "hmm")
    }

    /// Window means, the percentile and the count by hand (window 2).
    func testWindowEntropyByHand() {
        let h = [1.0, 2, 3, 4, 5]
        // i = 0…2: the next two; i = 3, 4: the running mean of the earlier window means.
        assertNear(AEPO.windowMeans(h, window: 2), [2.5, 3.5, 4.5, 3.5, 3.5], accuracy: 1e-12)
        XCTAssertEqual(AEPO.windowMeans([0.7], window: 2), [0.7])
        XCTAssertEqual(AEPO.percentile([3, 1, 2, 4], 95), 3.85, accuracy: 1e-12)
        XCTAssertEqual(AEPO.median([3, 1, 2, 4]), 2.5, accuracy: 1e-12)
        XCTAssertEqual(AEPO.percentile([], 95), 0)
        // A trigger counts with `window` tokens after it whose mean is ≥ θ; the one at 3 has one.
        XCTAssertEqual(AEPO.count(h, trigger: [true, false, false, true, false], threshold: 2.5, window: 2), 1)
        XCTAssertEqual(AEPO.count(h, trigger: [true, false, false, true, false], threshold: 2.6, window: 2), 0)
        XCTAssertEqual(AEPO.threshold(prior: nil, percentiles: [1, 3, 2], decay: 0.99).used, 2)
        let t = AEPO.threshold(prior: 1, percentiles: [1, 3, 2], decay: 0.99)
        XCTAssertEqual(t.used, 1)
        XCTAssertEqual(t.next, 0.99 + 0.02, accuracy: 1e-12)
    }
}
