import Foundation
import Testing
@testable import Credit

/// iStar's advantages: the official code's numbers (fixture), a case by hand, its reduction to
/// RLOO, and the inputs it refuses.
struct ISTARTests {
    struct File: Decodable {
        struct Episode: Decodable { let reward: Double, turn_rewards: [Double] }
        struct Case: Decodable { let step_weight: Double, step_mean: String, groups: [[Episode]], expected: [Double] }
        let cases: [Case]
    }

    /// An episode of `turns.count` turns of two tokens each (an action and an observation token).
    func episode(_ reward: Double, _ turns: [Double]) -> Trajectory {
        var t = Trajectory(tokens: Array(0..<(2 * turns.count)), reward: reward,
                           states: turns.indices.map { StateMark(index: 2 * $0, key: "s\($0)") })
        t.turnRewards = turns
        t.actionMask = (0..<(2 * turns.count)).map { $0 % 2 == 0 }
        return t
    }

    /// scripts/reference/istar_official.py re-implements `episode_rloo_reward` and `step_rloo_reward`
    /// of Tongyi-ConvAI/Tongyi-Character @dfee104 row by row (one row per turn); every token of a
    /// turn gets its row's advantage.
    @Test func matchesTheOfficialCode() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/istar_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 10)
        for (k, c) in file.cases.enumerated() {
            let groups = c.groups.enumerated().map { g, eps in Group(id: "g\(g)", trajectories: eps.map { episode($0.reward, $0.turn_rewards) }) }
            let p = ISTAR.Params(stepWeight: c.step_weight, stepMean: ISTAR.StepMean(rawValue: c.step_mean)!)
            let r = try run(.istar(p), groups)
            var got = [Double]()
            for (g, eps) in c.groups.enumerated() {
                for (i, e) in eps.enumerated() {
                    for turn in e.turn_rewards.indices {
                        #expect(r.advantages[g][i][2 * turn] == r.advantages[g][i][2 * turn + 1])
                        got.append(r.advantages[g][i][2 * turn])
                    }
                }
            }
            expectClose(got, c.expected, tol: 1e-12, "case \(k)")
        }
    }

    /// Two episodes: rewards 1 and 0 → A^E = 2·(1 − ½) = 1 and −1. Turn rewards (0.3, 0.1) and (−0.1):
    /// `first` takes m over first turns, (0.3 − 0.1)/2 = 0.1, M = 2: A^S = 2·(r − 0.1) → 0.4, 0, −0.4;
    /// `all` m = 0.1 over three turns, M = 3: A^S = 1.5·(r − 0.1) → 0.3, 0, −0.3.
    @Test func byHand() throws {
        let g = [Group(id: "q", trajectories: [episode(1, [0.3, 0.1]), episode(0, [-0.1])])]
        let first = try run(.istar(.init()), g).advantages[0]
        expectClose(first[0], [1.4, 1.4, 1, 1])
        expectClose(first[1], [-1.4, -1.4])
        let all = try run(.istar(.init(stepWeight: 0.5, stepMean: .all)), g).advantages[0]
        expectClose(all[0], [1.15, 1.15, 1, 1])
        expectClose(all[1], [-1.15, -1.15])
        // A lone episode keeps its reward and its turns' rewards.
        let lone = try run(.istar(.init()), [Group(id: "q", trajectories: [episode(0.5, [0.2, -0.2])])]).advantages[0][0]
        expectClose(lone, [0.7, 0.7, 0.3, 0.3])
    }

    /// step_weight 0 is RLOO over the episodes.
    @Test func reducesToRLOO() throws {
        let g = [Group(id: "q", trajectories: [episode(1, [0.3, 0.1]), episode(0, [-0.1]), episode(0.5, [0.9, 0.2, 0.1])])]
        let a = try run(.istar(.init(stepWeight: 0)), g).advantages[0]
        let plain = g.map { Group(id: $0.id, trajectories: $0.trajectories.map { Trajectory(tokens: $0.tokens, reward: $0.reward) }) }
        let rloo = try run(.rloo(.init()), plain).advantages[0]
        for i in a.indices { expectClose(a[i], rloo[i]) }
    }

    @Test func refusesMissingOrMismatchedTurnRewards() throws {
        var t = episode(1, [0.1, 0.2])
        t.turnRewards = [0.1]
        #expect(message { _ = try run(.istar(.init()), [Group(id: "q", trajectories: [t])]) }.contains("'turn_rewards' has 1 values but the trajectory has 2 turns ('states')"))
        t.turnRewards = nil
        #expect(message { _ = try run(.istar(.init()), [Group(id: "q", trajectories: [t])]) }.contains("turn_rewards"))
        #expect(message { _ = try config(#"{"method": "istar", "params": {"step_mean": "last"}}"#) }.contains("last"))
    }
}
