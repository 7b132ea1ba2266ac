/// Every credit-assignment method by its one name (YAML, CLI and JSON alike).
public enum CreditMethod: String, CaseIterable, Codable, Sendable {
    case grpo, rloo
    case reinforcePP = "reinforce_pp"
    case gae, tempo
    case spoChain = "spo_chain"
    case spoTree = "spo_tree"
    case pure, gigpo, hapo
    case twGRPO = "tw_grpo"
    case d3s, hicra
    case istar

    /// The paper each method implements, for the README and `--help`.
    public var paper: String {
        switch self {
        case .grpo: "DeepSeekMath (arXiv:2402.03300); Dr. GRPO with std_normalize=false (arXiv:2503.20783)"
        case .rloo: "Back to Basics: REINFORCE-style optimization for RLHF (arXiv:2402.14740)"
        case .reinforcePP: "REINFORCE++ (arXiv:2501.03262)"
        case .gae: "Generalized Advantage Estimation (arXiv:1506.02438)"
        case .tempo: "Exploiting Tree Structure for Credit Assignment in RL Training of LLMs (arXiv:2509.18314)"
        case .spoChain, .spoTree: "Segment Policy Optimization (arXiv:2505.23564)"
        case .pure: "Stop Summation: Min-Form Credit Assignment (arXiv:2504.15275)"
        case .gigpo: "Group-in-Group Policy Optimization for LLM Agent Training (arXiv:2505.10978)"
        case .hapo: "Heterogeneous Adaptive Policy Optimization (arXiv:2509.16591)"
        case .twGRPO: "Reinforcing Video Reasoning with Focused Thinking (arXiv:2505.24718)"
        case .d3s: "Dynamic Dual-Level Down-Sampling (arXiv:2509.22115)"
        case .hicra: "Emergent Hierarchical Reasoning in LLMs through RL (arXiv:2509.03646)"
        case .istar: "Agentic Reinforcement Learning with Implicit Step Rewards (iStar, arXiv:2509.19199)"
        }
    }
}

/// A method with its parameters: decoded from `{"method": NAME, "params": {...}}` (JSON or YAML),
/// encoded back the same way with every parameter resolved.
public indirect enum CreditConfig: Equatable, Sendable {
    case grpo(GRPO.Params)
    case rloo(RLOO.Params)
    case reinforcePP(ReinforcePP.Params)
    case gae(GAE.Params)
    case tempo(TEMPO.Params)
    case spoChain(SPOChain.Params)
    case spoTree(SPOTree.Params)
    case pure(PURE.Params)
    case gigpo(GiGPO.Params)
    case hapo(HAPO.Params)
    case twGRPO(TWGRPO.Params)
    case d3s(D3S.Params)
    case hicra(HICRA.Params)
    case istar(ISTAR.Params)

    public var method: CreditMethod {
        switch self {
        case .grpo: .grpo
        case .rloo: .rloo
        case .reinforcePP: .reinforcePP
        case .gae: .gae
        case .tempo: .tempo
        case .spoChain: .spoChain
        case .spoTree: .spoTree
        case .pure: .pure
        case .gigpo: .gigpo
        case .hapo: .hapo
        case .twGRPO: .twGRPO
        case .d3s: .d3s
        case .hicra: .hicra
        case .istar: .istar
        }
    }

    /// SPO-chain's parameters, as the method or as a composite's base: what its cut-point provider reads.
    public var spoChainParams: SPOChain.Params? {
        switch self {
        case .spoChain(let p): p
        case .d3s(let p): p.base.spoChainParams
        default: nil
        }
    }

    /// GAE's parameters when the pipeline is GAE (alone or as `d3s`'s base): what a critic's returns follow.
    public var gaeParams: GAE.Params? {
        switch self {
        case .gae(let p): p
        case .d3s(let p): p.base.gaeParams
        default: nil
        }
    }

    /// The method's pipeline of stages.
    public var estimator: AdvantageEstimator { Pipeline(stages: stages) }

    var stages: [CreditStage] {
        switch self {
        case .grpo(let p): [GRPO.Stage(params: p)]
        case .rloo: [RLOO.Stage()]
        case .reinforcePP(let p): [ReinforcePP.Stage(params: p)]
        case .gae(let p): [GAE.Stage(params: p)]
        case .tempo(let p): [TEMPO.Stage(params: p)]
        case .spoChain(let p): [SPOChain.Stage(params: p)]
        case .spoTree(let p): [SPOTree.Stage(params: p)]
        case .pure(let p): [PURE.Stage(params: p)]
        case .gigpo(let p): [GiGPO.Stage(params: p)]
        case .hapo(let p): [HAPO.Stage(params: p)]
        case .twGRPO(let p): [GRPO.Stage(params: p.grpo), TWGRPO.Stage(alpha: p.alpha)]
        case .d3s(let p): p.base.stages + [D3S.Stage(params: p)]
        case .hicra(let p): [GRPO.Stage(params: p.grpo), HICRA.Stage(params: p)]
        case .istar(let p): [ISTAR.Stage(params: p)]
        }
    }

    /// The method with all parameters at their defaults.
    public init(method: CreditMethod) {
        self = try! CreditConfig(method: method.rawValue, reader: .empty(method: method.rawValue))
    }

    init(method name: String, reader r: ParamReader) throws {
        guard let method = CreditMethod(rawValue: name) else {
            let known = CreditMethod.allCases.map(\.rawValue).joined(separator: ", ")
            throw CreditError("unknown method '\(name)' (known: \(known))")
        }
        switch method {
        case .grpo: self = .grpo(try GRPO.Params(r))
        case .rloo: self = .rloo(try RLOO.Params(r))
        case .reinforcePP: self = .reinforcePP(try ReinforcePP.Params(r))
        case .gae: self = .gae(try GAE.Params(r))
        case .tempo: self = .tempo(try TEMPO.Params(r))
        case .spoChain: self = .spoChain(try SPOChain.Params(r))
        case .spoTree: self = .spoTree(try SPOTree.Params(r))
        case .pure: self = .pure(try PURE.Params(r))
        case .gigpo: self = .gigpo(try GiGPO.Params(r))
        case .hapo: self = .hapo(try HAPO.Params(r))
        case .twGRPO: self = .twGRPO(try TWGRPO.Params(r))
        case .d3s: self = .d3s(try D3S.Params(r))
        case .hicra: self = .hicra(try HICRA.Params(r))
        case .istar: self = .istar(try ISTAR.Params(r))
        }
        try r.finish()
    }
}

extension CreditConfig: Codable {
    enum CodingKeys: String, CodingKey { case method, params }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let name = try? c.decode(String.self, forKey: .method) else {
            throw CreditError("credit config needs 'method' (a string: one of \(CreditMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let params: KeyedDecodingContainer<ParamReader.Key>?
        if c.contains(.params) {
            do {
                params = try c.nestedContainer(keyedBy: ParamReader.Key.self, forKey: .params)
            } catch {
                throw CreditError("method '\(name)': 'params' must be an object")
            }
        } else {
            params = nil
        }
        try self.init(method: name, reader: ParamReader(params, method: name))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        switch self {
        case .grpo(let p): try c.encode(p, forKey: .params)
        case .rloo(let p): try c.encode(p, forKey: .params)
        case .reinforcePP(let p): try c.encode(p, forKey: .params)
        case .gae(let p): try c.encode(p, forKey: .params)
        case .tempo(let p): try c.encode(p, forKey: .params)
        case .spoChain(let p): try c.encode(p, forKey: .params)
        case .spoTree(let p): try c.encode(p, forKey: .params)
        case .pure(let p): try c.encode(p, forKey: .params)
        case .gigpo(let p): try c.encode(p, forKey: .params)
        case .hapo(let p): try c.encode(p, forKey: .params)
        case .twGRPO(let p): try c.encode(p, forKey: .params)
        case .d3s(let p): try c.encode(p, forKey: .params)
        case .hicra(let p): try c.encode(p, forKey: .params)
        case .istar(let p): try c.encode(p, forKey: .params)
        }
    }
}
