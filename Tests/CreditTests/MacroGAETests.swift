import Foundation
import Testing
@testable import Credit

/// MA-RLHF's macro-action GAE (`gae` with `macro: fixed`): the split, a hand-derived case, the
/// reduction to token-level GAE at n = 1, and fixtures written by scripts/reference/ma_rlhf_official.py
/// from ernie-research/MA-RLHF @807551d (advantages and the critic's returns).
@Suite struct MacroGAETests {
    struct Case: Decodable {
        let kind: String
        let official_duplicate_boundary: Bool
        let request: CreditRequest
        let advantages: [[[Double]]]
        let returns: [[[Double]]]
    }
    struct File: Decodable { let source: String; let cases: [Case] }

    @Test func macrosOfNTokensWithTheLastAlone() {
        #expect(GAE.macros(count: 0, n: 5) == [])
        #expect(GAE.macros(count: 1, n: 5) == [0..<1])
        #expect(GAE.macros(count: 6, n: 5) == [0..<5, 5..<6])
        #expect(GAE.macros(count: 7, n: 5) == [0..<5, 5..<6, 6..<7])
        #expect(GAE.macros(count: 11, n: 5) == [0..<5, 5..<10, 10..<11])
        #expect(GAE.macros(count: 3, n: 1) == [0..<1, 1..<2, 2..<3])
    }

    @Test func handComputed() throws {
        // n = 2 on 3 tokens: macros [0, 1] and [2]. V = [1, 3, 2] → macro values [2, 2]; rewards [0, 0, 1] → [0, 1].
        // γ = λ = 1: last macro δ = 1 − 2 = −1, A = −1; first δ = 0 + 2 − 2 = 0, A = 0 − 1 = −1. Returns A + V = 1.
        var t = traj([1, 2, 3], 1)
        t.values = [1, 3, 2]
        let p = GAE.Params(gamma: 1, lam: 1, macro: .fixed, macroN: 2)
        let r = try run(.gae(p), [Group(id: "q", trajectories: [t])])
        expectClose(r.advantages[0][0], [-1, -1, -1])
        expectClose(GAE.returns(t, p), [1, 1, 1])
        // `unit` takes the macro's last token: V [3, 2] → last A = −1, first δ = 0 + 2 − 3 = −1, A = −2; returns [1, 1, 1].
        var unit = p
        unit.macroValue = .unit
        expectClose(try run(.gae(unit), [Group(id: "q", trajectories: [t])]).advantages[0][0], [-2, -2, -1])
    }

    @Test func oneTokenMacrosAreTokenLevelGAE() throws {
        var t = traj([1, 2, 3, 4, 5], 1)
        t.values = [0.1, -0.4, 0.9, 0.2, 0.5]
        t.kl = [0.3, -0.1, 0.2, 0.05, -0.2]
        let token = GAE.Params(klCoef: 0.1), macro = GAE.Params(klCoef: 0.1, macro: .fixed, macroN: 1)
        let a = try run(.gae(token), [Group(id: "q", trajectories: [t])]), b = try run(.gae(macro), [Group(id: "q", trajectories: [t])])
        expectClose(b.advantages[0][0], a.advantages[0][0], tol: 1e-12)
        expectClose(GAE.returns(t, macro), GAE.returns(t, token), tol: 1e-12)
    }

    @Test func paramsAndErrors() throws {
        let c = try JSONDecoder().decode(CreditConfig.self, from: Data(#"{"method": "gae", "params": {"macro": "fixed"}}"#.utf8))
        #expect(c == .gae(.init(macro: .fixed, macroN: 5, macroValue: .equal)))
        #expect(try JSONDecoder().decode(CreditConfig.self, from: JSONEncoder().encode(c)) == c)
        #expect(message { _ = try JSONDecoder().decode(CreditConfig.self, from: Data(#"{"method": "gae", "params": {"macro_n": 3}}"#.utf8)) }
            == "method 'gae': param 'macro_n' applies only with 'macro: fixed'")
        #expect(message { _ = try JSONDecoder().decode(CreditConfig.self, from: Data(#"{"method": "gae", "params": {"macro": "parse"}}"#.utf8)) }
            == "method 'gae': param 'macro' is 'parse'; expected one of 'none', 'fixed'")
        #expect(message { _ = try JSONDecoder().decode(CreditConfig.self, from: Data(#"{"method": "gae", "params": {"macro": "fixed", "macro_n": 0}}"#.utf8)) }
            == "method 'gae': param 'macro_n' must be 1…4096, got 0")
    }

    @Test func matchesTheOfficialCode() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ma_rlhf_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 24)
        #expect(file.cases.contains { $0.official_duplicate_boundary } && file.cases.contains { !$0.official_duplicate_boundary })
        for (k, c) in file.cases.enumerated() {
            guard case .gae(let p) = c.request.config else { Issue.record("case \(k) is not gae"); continue }
            let r = try c.request.config.estimator.estimate(c.request.batch)
            for g in c.advantages.indices {
                for i in c.advantages[g].indices {
                    let note = "case \(k) (\(c.kind)) group \(g) trajectory \(i)"
                    expectClose(r.advantages[g][i], c.advantages[g][i], tol: 1e-9, note)
                    expectClose(GAE.returns(c.request.batch.groups[g].trajectories[i], p), c.returns[g][i], tol: 1e-9, note)
                }
            }
        }
    }
}
