import Foundation
import Models
import Torch

/// Tree-shaped rollouts (SPO-tree, TEMPO): from a prompt, `branching` first segments; then every
/// live node is split into `branching` children at a segment boundary, while the number of leaves
/// stays within `max_leaves`. A boundary is a fixed token count, or (with `prob_threshold`) a
/// step where the policy's top-1 probability falls below the threshold, as SPO cuts segments.
/// A shared prefix is computed once: branching copies the parent's KV-cache row.
public struct TreeConfig: Codable, Equatable, Sendable {
    public var branching = 2
    public var segmentTokens = 32
    /// Branch where the top-1 probability drops below this (after at least `min_segment_tokens`).
    public var probThreshold: Double?
    public var minSegmentTokens = 4
    public var maxLeaves = 8

    public init(branching: Int = 2, segmentTokens: Int = 32, probThreshold: Double? = nil, minSegmentTokens: Int = 4, maxLeaves: Int = 8) {
        self.branching = branching; self.segmentTokens = segmentTokens; self.probThreshold = probThreshold
        self.minSegmentTokens = minSegmentTokens; self.maxLeaves = maxLeaves
    }

    enum CodingKeys: String, CodingKey {
        case branching, segmentTokens = "segment_tokens", probThreshold = "prob_threshold"
        case minSegmentTokens = "min_segment_tokens", maxLeaves = "max_leaves"
    }

    public func validate() throws {
        guard branching >= 1 else { throw RolloutError("tree: 'branching' must be at least 1, got \(branching)") }
        guard segmentTokens >= 1 else { throw RolloutError("tree: 'segment_tokens' must be at least 1, got \(segmentTokens)") }
        guard maxLeaves >= branching else { throw RolloutError("tree: 'max_leaves' (\(maxLeaves)) must be at least 'branching' (\(branching))") }
        if let p = probThreshold, !(0...1).contains(p) { throw RolloutError("tree: 'prob_threshold' must be in [0, 1], got \(p)") }
    }
}

/// A sampled tree: nodes (segments) with parents, and the flat root-to-leaf trajectories.
public struct RolloutTree: Sendable {
    public struct Node: Sendable {
        public let id: String
        public let parent: String?       // nil: a child of the prompt
        public let tokens: [Int]
        public let finishReason: FinishReason?   // set on leaves
    }

    public struct Trajectory: Sendable {
        /// Node ids from the prompt's child down to the leaf (Credit's `tree_path`).
        public let path: [String]
        /// Where each node's tokens start in `completion.tokens` (Credit's `segments`).
        public let segmentStarts: [Int]
        public let completion: Completion
    }

    public let nodes: [Node]
    public let trajectories: [Trajectory]
}

extension Sampler {
    public func sampleTree(prompt: [Int], config: SamplingConfig, tree: TreeConfig,
                           schedule: TemperatureSchedule = ConstantTemperature()) throws -> RolloutTree {
        try tree.validate()
        try check([prompt], n: tree.branching, config)
        let device = model.device
        var nodes = [Row](), parents = [Int?]()
        func newNode(parent: Int?) throws -> Int {
            let id = nodes.count
            let r = Row(0, id, try Generator(seed: Sampler.seed(config.seed, 0, id), device: device))
            if let parent { r.prefix = nodes[parent].prefix + nodes[parent].tokens }
            nodes.append(r)
            parents.append(parent)
            return id
        }
        let stopIds = stopIds(config)
        try withTorchErrors {
            try engine {
                let cache = KVCache(config: model.config, batch: 1, capacity: prompt.count + config.maxNewTokens, dtype: model.dtype, device: device)
                let prefill = try model.hidden(Tensor(prompt.map(Int64.init), shape: [1, prompt.count]).to(device), cache: cache)
                forwardTokens += prompt.count
                var live = try (0..<tree.branching).map { _ in try newNode(parent: nil) }
                let first = Tensor(Array(repeating: Int64(0), count: live.count)).to(device)
                cache.select(rows: first)
                var logits = model.logits(hidden: prefill.select(dim: 1, index: prompt.count - 1)).indexSelect(dim: 0, index: first)
                var leaves = live.count
                for step in 0..<config.maxNewTokens {
                    if step > 0 && tree.branching > 1 {
                        // Branch the rows at a boundary while the leaf budget allows.
                        let top1 = tree.probThreshold == nil ? nil : try logits.to(dtype: .float32).softmax(dim: -1).amax(dims: [-1]).doubles()
                        var index = [Int64](), next = [Int]()
                        for (k, id) in live.enumerated() {
                            let length = nodes[id].tokens.count
                            let boundary = tree.probThreshold.map { length >= tree.minSegmentTokens && top1![k] < $0 } ?? (length >= tree.segmentTokens)
                            if boundary && leaves + tree.branching - 1 <= tree.maxLeaves {
                                leaves += tree.branching - 1
                                for _ in 0..<tree.branching { next.append(try newNode(parent: id)); index.append(Int64(k)) }
                            } else {
                                next.append(id)
                                index.append(Int64(k))
                            }
                        }
                        if next.count != live.count {
                            let rows = Tensor(index).to(device)
                            cache.select(rows: rows)
                            logits = logits.indexSelect(dim: 0, index: rows)
                            live = next
                        }
                    }
                    let (ids, finished) = try decodeStep(logits: logits, rows: live.map { nodes[$0] }, seen: nil, config: config,
                                                         schedule: schedule, stopIds: stopIds, last: step == config.maxNewTokens - 1)
                    var feed = ids
                    if !finished.isEmpty {
                        guard let rows = dropFinished(finished, from: &live, cache: cache) else { break }
                        feed = ids.indexSelect(dim: 0, index: rows)
                    }
                    logits = try model(feed.unsqueezed(dim: 1), cache: cache).squeezed(dim: 1)
                    forwardTokens += live.count
                }
            }
        }
        return assemble(nodes, parents)
    }

    func assemble(_ nodes: [Row], _ parents: [Int?]) -> RolloutTree {
        let name = { (i: Int) in "n\(i)" }
        let treeNodes = nodes.indices.map { i in
            RolloutTree.Node(id: name(i), parent: parents[i].map(name), tokens: nodes[i].tokens, finishReason: nodes[i].finish)
        }
        var trajectories = [RolloutTree.Trajectory]()
        for leaf in nodes.indices where nodes[leaf].finish != nil {
            var path = [leaf]
            while let p = parents[path[0]] { path.insert(p, at: 0) }
            var starts = [Int](), tokens = [Int](), slp = [Double](), lp = [Double](), ent = [Double](), temps = [Double]()
            for n in path {
                starts.append(tokens.count)
                tokens += nodes[n].tokens; slp += nodes[n].samplingLogprobs; lp += nodes[n].logprobs
                ent += nodes[n].entropies; temps += nodes[n].temperatures
            }
            let c = Completion(promptIndex: 0, sampleIndex: trajectories.count, tokens: tokens, samplingLogprobs: slp, logprobs: lp,
                               entropies: ent, temperatures: temps, finishReason: nodes[leaf].finish!, text: nodes[leaf].text)
            trajectories.append(RolloutTree.Trajectory(path: path.map(name), segmentStarts: starts, completion: c))
        }
        return RolloutTree(nodes: treeNodes, trajectories: trajectories)
    }
}
