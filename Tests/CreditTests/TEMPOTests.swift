import Foundation
import Testing
@testable import Credit

@Suite struct TEMPOTests {
    // ALGORITHMS.md §10 worked example, tokens a=1 b=2 c=3 d=4 e=5 f=6:
    // y1 = a b c (R=1), y2 = a b d (R=0), y3 = a e (R=1), y4 = f (R=0).
    // V(root)=0.5, V(a)=2/3, V(ab)=0.5, V(abc)=1, V(abd)=0, V(ae)=1, V(f)=0.
    let example = Group(id: "q", trajectories: [traj([1, 2, 3], 1), traj([1, 2, 4], 0), traj([1, 5], 1), traj([6], 0)])
    let a = 0.5 / (1 / 3.0.squareRoot() + 1e-6)  // GRPO Â, unbiased std: ±0.866024

    @Test func workedExample() throws {
        let r = try run(.tempo(.init(valueSource: .raw)), [example])
        // δ: y1 [+1/6, −1/6, +1/2]; y2 [+1/6, −1/6, −1/2]; y3 [+1/6, +1/3]; y4 [−1/2].
        expectClose(r.advantages[0][0], [a + 1 / 6.0, a - 1 / 6.0, a + 0.5])
        expectClose(r.advantages[0][1], [-a + 1 / 6.0, -a - 1 / 6.0, -a - 0.5])
        expectClose(r.advantages[0][2], [a + 1 / 6.0, a + 1 / 3.0])
        expectClose(r.advantages[0][3], [-a - 0.5])
        // Every token of the example sits at a branch node: 9 of 9.
        #expect(r.diagnostics["tempo_branch_token_fraction"] == 1)
    }

    /// The default equals the authors' `compute_tempo_outcome_advantage` (fixtures written by
    /// scripts/reference/tempo_official.py, a line-by-line re-implementation of it): shared
    /// prefixes, empty responses, equal and real-valued rewards, with and without the std.
    @Test func defaultMatchesTheOfficialCode() throws {
        struct Case: Decodable { let std_normalize: Bool; let tokens: [[Int]]; let rewards: [Double]; let advantages: [[Double]] }
        struct File: Decodable { let source: String; let cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tempo_official.json")
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        #expect(file.cases.count == 40)
        for (k, c) in file.cases.enumerated() {
            let g = Group(id: "q", trajectories: zip(c.tokens, c.rewards).map { traj($0, $1) })
            let r = try run(.tempo(.init(grpo: .init(stdNormalize: c.std_normalize))), [g])
            for i in c.tokens.indices { expectClose(r.advantages[0][i], c.advantages[i], tol: 1e-6, "case \(k) response \(i)") }
        }
    }

    @Test func normalizedValueSource() throws {
        // z = Â: V(root) = 0, V(f) = −a → δ for y4 = −a.
        let r = try run(.tempo(.init(valueSource: .normalized)), [example])
        expectClose(r.advantages[0][3], [-a - a])
    }

    @Test func prefixAndIdenticalResponses() throws {
        // y1 = [1, 2] (R=1) is a strict prefix of y2 = [1, 2, 3] (R=0): node [1, 2] has two
        // continuations (y1 ends, y2 goes on), so y2's token 3 gets δ = V([1,2,3]) − V([1,2]) = 0 − 0.5.
        // Before that, both responses share every node: δ = 0.
        let r = try run(.tempo(.init(grpo: .init(stdNormalize: false))), [Group(id: "p", trajectories: [traj([1, 2], 1), traj([1, 2, 3], 0)])])
        expectClose(r.advantages[0][0], [0.5, 0.5])
        expectClose(r.advantages[0][1], [-0.5, -0.5, -0.5 - 0.5])
        // Identical responses share every node: no TD term at all.
        let same = try run(.tempo(.init(grpo: .init(stdNormalize: false))), [Group(id: "s", trajectories: [traj([7, 8], 1), traj([7, 8], 0)])])
        #expect(same.advantages[0] == [[0.5, 0.5], [-0.5, -0.5]])
    }

    @Test func reducesToGRPO() throws {
        // td_weight 0; a single response (a chain); equal rewards.
        let grpo = try run(.grpo(.init()), [example])
        #expect(try run(.tempo(.init(tdWeight: 0)), [example]).advantages == grpo.advantages)
        #expect(try run(.tempo(.init()), [group([(4, 1)])]).advantages == [[[1, 1, 1, 1]]])
        let equal = Group(id: "e", trajectories: [traj([1, 2], 1), traj([1, 3], 1), traj([4], 1)])
        #expect(try run(.tempo(.init()), [equal]).advantages == [[[0, 0], [0, 0], [0]]])
    }

    @Test func prefixTreeStatistics() {
        let tree = PrefixTree([[1, 2, 3], [1, 2, 4], [1, 5], [6]])
        let (sizes, means) = tree.nodeStatistics(of: 0, values: [1, 0, 1, 0])
        #expect(sizes == [4, 3, 2, 1])
        expectClose(means, [0.5, 2 / 3.0, 0.5, 1])
        let empty = tree.nodeStatistics(of: 3, values: [1, 0, 1, 0])
        #expect(empty.sizes == [4, 1])
    }
}
