import Foundation
import Testing
@testable import Credit

@Suite struct SPOChainTests {
    // ALGORITHMS.md §11.1: p = [0.95, 0.5, 0.99, 0.7, 0.98, 0.6], k = 2 → low-probability tokens
    // {1, 3, 5} → cut points [0, 2, 4] → kept [0, 4].
    let p = [0.95, 0.5, 0.99, 0.7, 0.98, 0.6]

    func example(_ values: [Double] = [0.3, 0.8]) -> Trajectory {
        Trajectory(tokens: Array(10..<16), reward: 1, logprobs: p.map { Foundation.log($0) }, segments: [0, 4], segmentValues: values)
    }

    @Test func cutpoints() {
        #expect(SPOChain.cutpoints(logprobs: p.map { Foundation.log($0) }, threshold: 0.9, interval: 2) == [0, 4])
        #expect(SPOChain.cutpoints(logprobs: p.map { Foundation.log($0) }, threshold: 0.9, interval: 1) == [0, 2, 4])
        #expect(SPOChain.cutpoints(logprobs: [0, 0], threshold: 0.9, interval: 1) == [])
    }

    @Test func workedExampleWithProbabilityMask() throws {
        // V0 = 0.3, V4 = 0.8, R = 1: raw [0, V4−V0, V4−V0, V4−V0, V4−V0, R−V4] = [0, .5, .5, .5, .5, .2];
        // masked where p > 0.9: [0, .5, 0, .5, 0, .2]; weights 1[p < 0.9].
        let r = try run(.spoChain(.init(whiten: false)), [Group(id: "q", trajectories: [example()])])
        expectClose(r.advantages[0][0], [0, 0.5, 0, 0.5, 0, 0.2])
        #expect(r.weights[0][0] == [0, 1, 0, 1, 0, 1])
        let raw = try run(.spoChain(.init(probMask: false, whiten: false)), [Group(id: "q", trajectories: [example()])])
        expectClose(raw.advantages[0][0], [0, 0.5, 0.5, 0.5, 0.5, 0.2])
    }

    @Test func whiteningOverKeptTokens() throws {
        // Kept tokens [.5, .5, .2]: mean 0.4, unbiased var (.01 + .01 + .04)/2 = 0.03 → σ = 0.173205.
        let r = try run(.spoChain(.init()), [Group(id: "q", trajectories: [example()])])
        let s = 0.03.squareRoot()
        expectClose(r.advantages[0][0], [0, 0.1 / s, 0, 0.1 / s, 0, -0.2 / s])
    }

    @Test func promptCutIsTheBaselineAndNoCutGivesZero() throws {
        // One cut at −1 valued V̂(x) = 0.25 → every token: R − 0.25 (the GRPO-like reduction).
        let t = Trajectory(tokens: [1, 2, 3], reward: 1, segments: [-1], segmentValues: [0.25])
        let none = Trajectory(tokens: [1, 2], reward: 1, segments: [], segmentValues: [])
        let r = try run(.spoChain(.init(probMask: false, whiten: false)), [Group(id: "q", trajectories: [t, none])])
        #expect(r.advantages[0] == [[0.75, 0.75, 0.75], [0, 0]])
    }

    @Test func badInputs() {
        let cfg = CreditConfig.spoChain(.init(probMask: false))
        #expect(message { _ = try run(cfg, [group([(2, 1)])]) }.hasPrefix("group 'q', trajectory 0: method 'spo_chain' needs 'segments' and 'segment_values'"))
        let far = Trajectory(tokens: [1, 2], reward: 1, segments: [1], segmentValues: [0.5])
        #expect(message { _ = try run(cfg, [Group(id: "q", trajectories: [far])]) }
            == "group 'q', trajectory 0: 'segments'[0] = 1 must be in [-1, 0] (a cut point before a token of the response)")
        let mismatch = Trajectory(tokens: [1, 2], reward: 1, segments: [0], segmentValues: [])
        #expect(message { _ = try run(cfg, [Group(id: "q", trajectories: [mismatch])]) }
            == "group 'q', trajectory 0: 'segments' has 1 cut points but 'segment_values' has 0 values")
        let noLogprobs = Trajectory(tokens: [1, 2], reward: 1, segments: [], segmentValues: [])
        #expect(message { _ = try run(.spoChain(.init()), [Group(id: "q", trajectories: [noLogprobs])]) }
            == "group 'q', trajectory 0: method 'spo_chain' with prob_mask needs 'logprobs'")
    }
}

@Suite struct SPOTreeTests {
    // root → A (tokens 1 2) → A1 (3, R=1), A2 (4, R=0);  root → B (5) → B1 (6 7, R=1), B2 (8, R=1).
    // V(A) = 0.5, V(B) = 1, V(root) = mean(0.5, 1) = 0.75.
    func tree() -> Group {
        func t(_ tokens: [Int], _ r: Double, _ path: [String], _ starts: [Int]) -> Trajectory {
            Trajectory(tokens: tokens, reward: r, segments: starts, treePath: path)
        }
        return Group(id: "q", trajectories: [
            t([1, 2, 3], 1, ["A", "A1"], [0, 2]), t([1, 2, 4], 0, ["A", "A2"], [0, 2]),
            t([5, 6, 7], 1, ["B", "B1"], [0, 1]), t([5, 8], 1, ["B", "B2"], [0, 1]),
        ])
    }

    @Test func rlooEdges() throws {
        // Edges: A −0.25, A1 +0.5, A2 −0.5, B +0.25, B1 0, B2 0. A shared node trains once (on its
        // first path), as the official code trains each node as one sample; zero edges get weight 0.
        let r = try run(.spoTree(.init(probMask: false, whiten: false)), [tree()])
        #expect(r.advantages[0] == [[-0.25, -0.25, 0.5], [-0.25, -0.25, -0.5], [0.25, 0, 0], [0.25, 0]])
        #expect(r.weights[0] == [[1, 1, 1], [0, 0, 1], [1, 0, 0], [0, 0]])
        // Whitening counts each node once: over the node tokens A A A1 A2 B (values −.25 −.25 .5 −.5 .25).
        let w = try run(.spoTree(.init(probMask: false, whiten: true)), [tree()])
        let nodes = [-0.25, -0.25, 0.5, -0.5, 0.25], mu = nodes.reduce(0, +) / 5
        let sd = (nodes.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / 4).squareRoot()
        expectClose(w.advantages[0][0], [-0.25, -0.25, 0.5].map { ($0 - mu) / sd })
        #expect(abs(w.diagnostics["whiten_mean"]! - mu) < 1e-12)
    }

    @Test func grpoEdges() throws {
        // σ(root) over [0.5, 1] (biased) = 0.25 → A: −1, B: +1; σ(A) over [1, 0] = 0.5 → A1 +1, A2 −1.
        let r = try run(.spoTree(.init(advantage: .grpo, probMask: false, whiten: false)), [tree()])
        expectClose(r.advantages[0][0], [-1, -1, 1])
        expectClose(r.advantages[0][1], [-1, -1, -1])
        expectClose(r.advantages[0][2], [1, 0, 0])
    }

    @Test func earlyFinishedLeafCountsAsOneChild() throws {
        // root → A (→ A1 R=1, A2 R=0) and root → C (a finished leaf, R=0): V(root) = mean(0.5, 0) = 0.25.
        var g = tree()
        g.trajectories = Array(g.trajectories.prefix(2)) + [Trajectory(tokens: [9], reward: 0, segments: [0], treePath: ["C"])]
        let r = try run(.spoTree(.init(probMask: false, whiten: false)), [g])
        expectClose(r.advantages[0][0], [0.25, 0.25, 0.5])
        expectClose(r.advantages[0][2], [-0.25])
    }

    @Test func singleNodePathsReduceToMeanBaseline() throws {
        let g = Group(id: "q", trajectories: [1.0, 0, 0, 1].enumerated().map { k, r in
            Trajectory(tokens: [k, k], reward: r, segments: [0], treePath: ["n\(k)"])
        })
        let r = try run(.spoTree(.init(probMask: false, whiten: false)), [g])
        let dr = try run(.grpo(.init(stdNormalize: false)), [g])
        #expect(r.advantages == dr.advantages)
    }

    @Test func inconsistentTreesAreRejected() {
        var g = tree()
        g.trajectories[3].treePath = ["A", "B2"]
        g.trajectories[3].tokens = [1, 2]
        g.trajectories[3].segments = [0, 1]
        #expect(message { _ = try run(.spoTree(.init(probMask: false)), [g]) }
            == "group 'q', trajectory 3: node 'A' has different tokens here than in another trajectory")
        var twice = tree()
        twice.trajectories[1].treePath = ["A", "A1"]
        twice.trajectories[1].tokens = [1, 2, 3]
        #expect(message { _ = try run(.spoTree(.init(probMask: false)), [twice]) } == "group 'q', trajectory 1: leaf 'A1' ends two trajectories")
        #expect(message { _ = try run(.spoTree(.init(probMask: false)), [group([(2, 1)])]) }
            == "group 'q', trajectory 0: method 'spo_tree' needs 'tree_path' and 'segments' (the token where each node starts)")
    }
}
