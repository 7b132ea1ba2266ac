import Credit
import Foundation
import Torch

/// `tokenwise objective`: a policy loss over `trajectories` or a preference loss over `pairs`,
/// evaluated with libtorch; the gradient with respect to every per-token log-probability comes
/// from autograd.
public enum ObjectiveJSON {
    struct TrajectoryIn: Decodable {
        var logprobs: [Double]
        var oldLogprobs: [Double]
        var advantages: [Double]
        var rolloutLogprobs: [Double]?, refLogprobs: [Double]?, weights: [Double]?, entropies: [Double]?
        var turns: [Int]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case logprobs, advantages, weights, entropies, turns
            case oldLogprobs = "old_logprobs", rolloutLogprobs = "rollout_logprobs", refLogprobs = "ref_logprobs"
        }

        init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "trajectory")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            logprobs = try c.decode([Double].self, forKey: .logprobs)
            oldLogprobs = try c.decode([Double].self, forKey: .oldLogprobs)
            advantages = try c.decode([Double].self, forKey: .advantages)
            rolloutLogprobs = try c.decodeIfPresent([Double].self, forKey: .rolloutLogprobs)
            refLogprobs = try c.decodeIfPresent([Double].self, forKey: .refLogprobs)
            weights = try c.decodeIfPresent([Double].self, forKey: .weights)
            entropies = try c.decodeIfPresent([Double].self, forKey: .entropies)
            turns = try c.decodeIfPresent([Int].self, forKey: .turns)
        }
    }

    struct SideIn: Decodable {
        var logprobs: [Double]
        var refLogprobs: [Double]
        var weights: [Double]?, kl: [Double]?, klWeights: [Double]?, rmLogprobs: [Double]?, revisionRewards: [Double]?
        /// F-DPO's label of the response (1: hallucinated, 0: factual).
        var hallucinated: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case logprobs, weights, kl, hallucinated
            case refLogprobs = "ref_logprobs", klWeights = "kl_weights", rmLogprobs = "rm_logprobs", revisionRewards = "revision_rewards"
        }

        init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, CodingKeys.self, in: "pair side")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            logprobs = try c.decode([Double].self, forKey: .logprobs)
            refLogprobs = try c.decode([Double].self, forKey: .refLogprobs)
            weights = try c.decodeIfPresent([Double].self, forKey: .weights)
            kl = try c.decodeIfPresent([Double].self, forKey: .kl)
            klWeights = try c.decodeIfPresent([Double].self, forKey: .klWeights)
            rmLogprobs = try c.decodeIfPresent([Double].self, forKey: .rmLogprobs)
            revisionRewards = try c.decodeIfPresent([Double].self, forKey: .revisionRewards)
            hallucinated = try c.decodeIfPresent(Double.self, forKey: .hallucinated)
            if let h = hallucinated, h != 0 && h != 1 { throw ObjectiveError("pair side: 'hallucinated' must be 1 or 0, got \(h)") }
        }
    }

    struct PairIn: Decodable { var chosen: SideIn; var rejected: SideIn }

    enum Request {
        case policy(PolicyLossConfig, [TrajectoryIn])
        case preference(PreferenceLoss.Config, [PairIn])
    }

    enum TopKey: String, CodingKey, CaseIterable { case objective, trajectories, pairs }

    struct RequestIn: Decodable {
        var request: Request
        init(from decoder: Decoder) throws {
            try rejectUnknownKeys(decoder, TopKey.self, in: "request")
            let c = try decoder.container(keyedBy: TopKey.self)
            switch (c.contains(.trajectories), c.contains(.pairs)) {
            case (true, false):
                request = .policy(try c.decodeIfPresent(PolicyLossConfig.self, forKey: .objective) ?? PolicyLossConfig(),
                                  try c.decode([TrajectoryIn].self, forKey: .trajectories))
            case (false, true):
                request = .preference(try c.decodeIfPresent(PreferenceLoss.Config.self, forKey: .objective) ?? .init(),
                                      try c.decode([PairIn].self, forKey: .pairs))
            default:
                throw ObjectiveError("request: give either 'trajectories' (policy loss) or 'pairs' (preference loss)")
            }
        }
    }

    /// Checks that an optional per-token field matches the length of `logprobs`.
    static func checkLength<T>(_ values: [T]?, _ field: String, _ n: Int, _ at: String) throws {
        if let values, values.count != n {
            throw ObjectiveError("\(at): '\(field)' has \(values.count) values but 'logprobs' has \(n)")
        }
    }

    static func tensor(_ rows: [[Double]], _ dtype: DType) -> Tensor { padded(rows, dtype: dtype).values }

    /// An optional per-token field as a padded tensor: given for every item, or for none (nil).
    static func allOrNone<T>(_ items: [T], _ get: (T) -> [Double]?, _ field: String, _ items_: String, _ dtype: DType) throws -> Tensor? {
        let present = items.filter { get($0) != nil }.count
        guard present > 0 else { return nil }
        guard present == items.count else { throw ObjectiveError("objective: \(field) must be given for every \(items_) or none") }
        return tensor(items.map { get($0)! }, dtype)
    }

    /// The response as JSON text; a non-finite value (inputs that overflow) is an error naming the
    /// field, not a serialisation failure.
    public static func encode(_ out: [String: Any], pretty: Bool = false) throws -> Data {
        func check(_ v: Any, _ at: String) throws {
            if let d = v as? Double, !d.isFinite { throw ObjectiveError("\(at) is \(d): the inputs overflow double precision") }
            if let list = v as? [Any] { for (k, x) in list.enumerated() { try check(x, "\(at)[\(k)]") } }
            if let obj = v as? [String: Any] { for (k, x) in obj.sorted(by: { $0.key < $1.key }) { try check(x, at.isEmpty ? k : "\(at).\(k)") } }
        }
        try check(out, "")
        var options: JSONSerialization.WritingOptions = [.sortedKeys]
        if pretty { options.insert(.prettyPrinted) }
        return try JSONSerialization.data(withJSONObject: out, options: options)
    }

    /// Evaluates a request and returns the response JSON object.
    public static func evaluate(_ data: Data, dtype: DType = .float64) throws -> [String: Any] {
        // SparsePO's `mask` says where training takes the masks from; here they are the sides' `weights`.
        if let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let objective = root["objective"] as? [String: Any],
           objective["mask"] != nil, objective["name"] as? String == PreferenceLoss.Name.sparsepo.rawValue {
            throw ObjectiveError("objective: 'mask' chooses where training takes SparsePO's masks from; tokenwise objective reads them from each side's 'weights'")
        }
        let request: Request
        do {
            request = try JSONDecoder().decode(RequestIn.self, from: data).request
        } catch let e as DecodingError {
            throw ObjectiveError(DecodingErrorText.describe(e, data: data, wholeNumbers: ["turns"]))
        }
        return try withTorchErrors {
            switch request {
            case .policy(let config, let trajs):
                return try policy(config, trajs, dtype)
            case .preference(let config, let pairs):
                return try preference(config, pairs, dtype)
            }
        }
    }

    static func policy(_ config: PolicyLossConfig, _ trajs: [TrajectoryIn], _ dtype: DType) throws -> [String: Any] {
        guard !trajs.isEmpty else { throw ObjectiveError("objective: the batch is empty (no trajectories)") }
        for (i, t) in trajs.enumerated() {
            let at = "trajectories[\(i)]", n = t.logprobs.count
            try checkLength(t.oldLogprobs, "old_logprobs", n, at)
            try checkLength(t.advantages, "advantages", n, at)
            try checkLength(t.rolloutLogprobs, "rollout_logprobs", n, at)
            try checkLength(t.refLogprobs, "ref_logprobs", n, at)
            try checkLength(t.weights, "weights", n, at)
            try checkLength(t.entropies, "entropies", n, at)
            try checkLength(t.turns, "turns", n, at)
        }
        func optional(_ get: (TrajectoryIn) -> [Double]?, _ name: String) throws -> Tensor? {
            try allOrNone(trajs, get, "'\(name)'", "trajectory", dtype)
        }
        let (logp, mask) = padded(trajs.map(\.logprobs), dtype: dtype)
        logp.requiresGrad = true
        let batch = PolicyBatch(
            logprobs: logp, oldLogprobs: tensor(trajs.map(\.oldLogprobs), dtype), advantages: tensor(trajs.map(\.advantages), dtype),
            mask: mask, rolloutLogprobs: try optional(\.rolloutLogprobs, "rollout_logprobs"),
            refLogprobs: try optional(\.refLogprobs, "ref_logprobs"), weights: try optional(\.weights, "weights"),
            entropies: try optional(\.entropies, "entropies"),
            turns: try optional({ $0.turns?.map(Double.init) }, "turns")?.to(dtype: .int64))
        let (loss, metrics) = try PolicyLoss(config)(batch)
        loss.backward()
        let grad = try (logp.grad ?? Tensor.zeros(like: logp)).doubles()
        let width = logp.size(1)
        let grads = trajs.enumerated().map { i, t in Array(grad[(i * width)..<(i * width + t.logprobs.count)]) }
        return ["loss": try loss.item(), "grad_logprobs": grads, "metrics": metrics]
    }

    static func preference(_ config: PreferenceLoss.Config, _ pairs: [PairIn], _ dtype: DType) throws -> [String: Any] {
        guard !pairs.isEmpty else { throw ObjectiveError("objective: the batch has no pairs") }
        func side(_ get: (PairIn) -> SideIn, _ label: String) throws -> (PreferenceLoss.Side, Tensor) {
            let sides = pairs.map(get)
            for (i, s) in sides.enumerated() {
                let at = "pairs[\(i)].\(label)", n = s.logprobs.count
                try checkLength(s.refLogprobs, "ref_logprobs", n, at)
                try checkLength(s.weights, "weights", n, at)
                try checkLength(s.kl, "kl", n, at)
                try checkLength(s.klWeights, "kl_weights", n, at)
                try checkLength(s.rmLogprobs, "rm_logprobs", n, at)
                try checkLength(s.revisionRewards, "revision_rewards", n, at)
            }
            func optional(_ f: (SideIn) -> [Double]?, _ name: String) throws -> Tensor? {
                try allOrNone(sides, f, "\(label) '\(name)'", "pair", dtype)
            }
            let (logp, mask) = padded(sides.map(\.logprobs), dtype: dtype)
            logp.requiresGrad = true
            let s = PreferenceLoss.Side(logprobs: logp, refLogprobs: tensor(sides.map(\.refLogprobs), dtype), mask: mask,
                                        weights: try optional(\.weights, "weights"), kl: try optional(\.kl, "kl"),
                                        klWeights: try optional(\.klWeights, "kl_weights"), rmLogprobs: try optional(\.rmLogprobs, "rm_logprobs"),
                                        hallucinated: try optional({ $0.hallucinated.map { [$0] } }, "hallucinated")?.squeezed(dim: 1),
                                        revisionRewards: try optional(\.revisionRewards, "revision_rewards"))
            return (s, logp)
        }
        let (chosen, lc) = try side(\.chosen, "chosen"), (rejected, lr) = try side(\.rejected, "rejected")
        let (loss, metrics, rewards) = try PreferenceLoss(config)(chosen: chosen, rejected: rejected)
        loss.backward()
        func rows(_ t: Tensor, _ lengths: [Int]) throws -> [[Double]] {
            let flat = try t.doubles(), width = t.size(1)
            return lengths.enumerated().map { i, n in Array(flat[(i * width)..<(i * width + n)]) }
        }
        let nc = pairs.map(\.chosen.logprobs.count), nr = pairs.map(\.rejected.logprobs.count)
        let gc = try rows(lc.grad ?? Tensor.zeros(like: lc), nc), gr = try rows(lr.grad ?? Tensor.zeros(like: lr), nr)
        let tc = try rows(rewards.chosen, nc), tr = try rows(rewards.rejected, nr)
        return [
            "loss": try loss.item(),
            "grad_logprobs": pairs.indices.map { ["chosen": gc[$0], "rejected": gr[$0]] },
            "token_rewards": pairs.indices.map { ["chosen": tc[$0], "rejected": tr[$0]] },
            "metrics": metrics,
        ]
    }
}
