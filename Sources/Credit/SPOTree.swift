import Foundation

/// SPO-tree — "Segment Policy Optimization" (arXiv:2505.23564), ALGORITHMS.md §11.2.
/// A group is a rollout tree given by each leaf's `tree_path` (node ids from the root's child to
/// the leaf) and `segments` (the token where each node's span starts). A leaf's value is its
/// trajectory's reward; an inner node's value is the mean of its children's values (recursively,
/// so an early-finished leaf counts as one child); σ(n) is the std over n's children.
/// Each node's tokens get the advantage of the edge into it:
///   `advantage: rloo`  A = V(child) − V(parent);   `grpo`  A = (V(child) − V(parent))/(σ(parent) + 1e-8).
/// A node shared by k trajectories trains once, as in the official code (AIFrameResearch/SPO
/// @b9fc6a2, `extract_edges_from_tree`: one training sample per node): weight 1 on the first
/// trajectory through it, 0 on the others, so it counts once in the loss, its token-mean
/// denominator and the whitening statistics (its copies are the same tokens after the same prefix,
/// so any one of them gives the same loss and gradient). With `drop_zero` an edge with A = 0 gets
/// weight 0. Probability mask and whitening as SPO-chain.
/// Reduces to GRPO-like training when every path is a single node: A_i = R_i − mean_G R.
public enum SPOTree {
    public enum Mode: String, Codable, Sendable, CaseIterable { case rloo, grpo }

    public struct Params: Encodable, Equatable, Sendable {
        public var advantage: Mode = .rloo
        public var std: StdKind = .biased
        public var dropZero = true
        public var probThreshold = 0.9
        public var probMask = true
        public var whiten = true

        public init(advantage: Mode = .rloo, std: StdKind = .biased, dropZero: Bool = true,
                    probThreshold: Double = 0.9, probMask: Bool = true, whiten: Bool = true) {
            self.advantage = advantage; self.std = std; self.dropZero = dropZero
            self.probThreshold = probThreshold; self.probMask = probMask; self.whiten = whiten
        }

        init(_ r: ParamReader) throws {
            advantage = try r.choice("advantage", Mode.rloo)
            std = try r.choice("std", StdKind.biased)
            dropZero = try r.value("drop_zero", true)
            probThreshold = try r.value("prob_threshold", 0.9)
            probMask = try r.value("prob_mask", true)
            whiten = try r.value("whiten", true)
            try r.check("prob_threshold", (0...1).contains(probThreshold), "must be in [0, 1], got \(probThreshold)")
        }

        enum CodingKeys: String, CodingKey {
            case advantage, std, dropZero = "drop_zero", probThreshold = "prob_threshold", probMask = "prob_mask", whiten
        }
    }

    /// The tree of one group: children per node ("" is the root) and the leaf values.
    struct Tree {
        var children: [String: [String]] = [:]
        var parent: [String: String] = [:]
        var leafValue: [String: Double] = [:]
        var span: [String: ArraySlice<Int>] = [:]
        var value: [String: Double] = [:]
        var sigma: [String: Double] = [:]

        mutating func evaluate(_ node: String, _ kind: StdKind) -> Double {
            if let v = value[node] { return v }
            let v: Double
            if let leaf = leafValue[node] {
                v = leaf
            } else {
                let vs = (children[node] ?? []).map { evaluate($0, kind) }
                v = Stats.mean(vs)
                sigma[node] = Stats.std(vs, kind)
            }
            value[node] = v
            return v
        }
    }

    static func buildTree(_ batch: CreditBatch, _ g: Int) throws -> Tree {
        var tree = Tree()
        for (i, t) in batch.groups[g].trajectories.enumerated() {
            let at = here(batch, g, i)
            guard let path = t.treePath, !path.isEmpty, let starts = t.segments else {
                throw CreditError("\(at): method 'spo_tree' needs 'tree_path' and 'segments' (the token where each node starts)")
            }
            guard starts.count == path.count else {
                throw CreditError("\(at): 'tree_path' has \(path.count) nodes but 'segments' has \(starts.count) starts")
            }
            guard starts[0] == 0 else { throw CreditError("\(at): 'segments'[0] must be 0, got \(starts[0])") }
            for k in starts.indices.dropFirst() where starts[k] <= starts[k - 1] || starts[k] > t.count {
                throw CreditError("\(at): 'segments'[\(k)] = \(starts[k]) must increase and stay within the \(t.count) tokens")
            }
            var parent = ""
            for (k, node) in path.enumerated() {
                guard !node.isEmpty else { throw CreditError("\(at): 'tree_path'[\(k)] is an empty node id") }
                let end = k + 1 < starts.count ? starts[k + 1] : t.count
                let span = t.tokens[starts[k]..<end]
                if let known = tree.parent[node] {
                    guard known == parent else {
                        throw CreditError("\(at): node '\(node)' has parent '\(parent)' here but '\(known)' in another trajectory")
                    }
                    guard tree.span[node]! == span else {
                        throw CreditError("\(at): node '\(node)' has different tokens here than in another trajectory")
                    }
                } else {
                    tree.parent[node] = parent
                    tree.span[node] = span
                    tree.children[parent, default: []].append(node)
                }
                parent = node
            }
            guard tree.leafValue[parent] == nil else {
                throw CreditError("\(at): leaf '\(parent)' ends two trajectories")
            }
            tree.leafValue[parent] = t.reward
        }
        for leaf in tree.leafValue.keys where tree.children[leaf] != nil {
            throw CreditError("group '\(batch.groups[g].id)': node '\(leaf)' ends a trajectory but also has children")
        }
        return tree
    }

    struct Stage: CreditStage {
        let params: Params
        var inputs: Set<CreditInput> { params.probMask ? [.tree, .logprobs] : [.tree] }

        func validate(_ batch: CreditBatch) throws {
            for g in batch.groups.indices { _ = try SPOTree.buildTree(batch, g) }
            if params.probMask {
                try Validation.require(batch, "spo_tree", "logprobs (for prob_mask)") { $0.logprobs != nil }
            }
        }

        func apply(_ batch: CreditBatch, _ result: inout CreditResult) throws {
            var edges = 0, zeroEdges = 0
            for (g, group) in batch.groups.enumerated() {
                var tree = try SPOTree.buildTree(batch, g)
                _ = tree.evaluate("", params.std)
                var trained = Set<String>()
                var edgeAdv: [String: Double] = [:]
                for (node, parent) in tree.parent {
                    var a = tree.evaluate(node, params.std) - tree.value[parent]!
                    if params.advantage == .grpo { a /= (tree.sigma[parent] ?? 0) + 1e-8 }
                    // The official test is `!= 0` on values summed in the tree's creation order; a
                    // group's paths give another order, so "zero" allows for the rounding of that sum.
                    if abs(a) <= 1e-12 { a = 0 }
                    edgeAdv[node] = a
                    edges += 1
                    if a == 0 { zeroEdges += 1 }
                }
                for (i, t) in group.trajectories.enumerated() {
                    let path = t.treePath!, starts = t.segments!
                    for (k, node) in path.enumerated() {
                        let end = k + 1 < starts.count ? starts[k + 1] : t.count
                        let a = edgeAdv[node]!
                        let first = trained.insert(node).inserted
                        let w: Double = (params.dropZero && a == 0) || !first ? 0 : 1
                        for tok in starts[k]..<end {
                            result.advantages[g][i][tok] = a
                            result.weights[g][i][tok] = w
                        }
                    }
                    if params.probMask {
                        for (k, lp) in t.logprobs!.enumerated() {
                            let p = Foundation.exp(lp)
                            if p > params.probThreshold { result.advantages[g][i][k] = 0 }
                            if p >= params.probThreshold { result.weights[g][i][k] = 0 }
                        }
                    }
                }
            }
            if params.whiten {
                result.whiten(kind: .unbiased)
                result.zeroUnweighted()
            }
            result.diagnostics["spo_tree_edges"] = Double(edges)
            result.diagnostics["spo_tree_zero_edge_fraction"] = edges == 0 ? 0 : Double(zeroEdges) / Double(edges)
        }
    }
}
