import Foundation
import XCTest
@testable import Models
@testable import Rollout
@testable import Torch

final class TreeSamplerTests: XCTestCase {
    func testTreeStructureSharingAndLogprobs() throws {
        let (m, tok) = try tinyModel(sharpness: 10)
        let s = Sampler(model: m, tokenizer: tok)
        let prompt = [10, 20, 30, 40]
        let tree = try s.sampleTree(prompt: prompt, config: .init(temperature: 1, maxNewTokens: 9, stopTokenIds: [999], seed: 5),
                                    tree: .init(branching: 2, segmentTokens: 3, maxLeaves: 6))
        let byId = Dictionary(uniqueKeysWithValues: tree.nodes.map { ($0.id, $0) })
        XCTAssertLessThanOrEqual(tree.trajectories.count, 6)
        XCTAssertGreaterThan(tree.trajectories.count, 2)
        XCTAssertEqual(tree.nodes.filter { $0.parent == nil }.count, 2)
        var sampled = 0
        for node in tree.nodes { sampled += node.tokens.count }
        for t in tree.trajectories {
            // Every leaf's sequence is its root-to-leaf path.
            XCTAssertEqual(t.completion.tokens, t.path.flatMap { byId[$0]!.tokens })
            XCTAssertEqual(t.segmentStarts.count, t.path.count)
            XCTAssertEqual(t.segmentStarts.first, 0)
            for (a, b) in zip(t.path.dropFirst(), t.path) { XCTAssertEqual(byId[a]!.parent, b) }
            if t.completion.finishReason == .length { XCTAssertEqual(t.completion.tokens.count, 9) }
            // Logprobs through copied cache rows equal a fresh forward pass.
            let ref = try teacherForced(m, prompt: prompt, tokens: t.completion.tokens)
            for (x, y) in zip(t.completion.logprobs, ref.lp) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        }
        // Shared prefixes are not recomputed: the prompt once, then each sampled token fed back once
        // (a leaf's last token is not), far fewer than running every trajectory separately.
        XCTAssertEqual(s.forwardTokens, prompt.count + sampled - tree.trajectories.count)
        let separate = tree.trajectories.reduce(0) { $0 + prompt.count + $1.completion.tokens.count - 1 }
        XCTAssertLessThan(s.forwardTokens, separate)
    }

    func testProbabilityCutPointsAndBudget() throws {
        let (m, tok) = try tinyModel(sharpness: 3)
        let s = Sampler(model: m, tokenizer: tok)
        // Flat distributions: top-1 < 0.9 everywhere, so every node branches after 2 tokens until the budget.
        let tree = try s.sampleTree(prompt: [1, 2], config: .init(temperature: 1, maxNewTokens: 8, stopTokenIds: [999]),
                                    tree: .init(branching: 3, probThreshold: 0.9, minSegmentTokens: 2, maxLeaves: 7))
        XCTAssertEqual(tree.trajectories.count, 7)   // 3 roots, then two branchings of 3
        XCTAssertEqual(tree.nodes.count, 9)
        let parents = Dictionary(grouping: tree.nodes.compactMap(\.parent), by: { $0 })
        XCTAssertEqual(parents.count, 2)
        XCTAssertTrue(parents.values.allSatisfy { $0.count == 3 })
        // Branching happened after exactly min_segment_tokens tokens of the parents.
        for p in parents.keys { XCTAssertEqual(tree.nodes.first { $0.id == p }!.tokens.count, 2) }
        XCTAssertThrowsError(try s.sampleTree(prompt: [1], config: .init(), tree: .init(branching: 4, maxLeaves: 2))) {
            XCTAssertEqual("\($0)", "tree: 'max_leaves' (2) must be at least 'branching' (4)")
        }
    }
}
