import Foundation
import Yams

/// `tokenwise compare`: named arms (override sets over one base config) trained over paired seeds.
/// Arm A and arm B with seed s get `train.seed`, `rollout.seed` = s and `eval.seed` = 1234 + s over
/// the same data section, so they see the same prompts in the same order and the same held-out
/// set; arms may not change the data, the evaluation, the seeds or the step budget. Each (arm,
/// seed) is an ordinary run folder `<out>/<arm>-s<seed>/`, so a comparison stopped anywhere
/// continues where it stopped: finished runs are kept, an unfinished one is resumed.
public struct ComparisonConfig: Equatable {
    public var preset = "default"
    /// A base YAML run config (relative to the comparison file), merged over the preset.
    public var config: String?
    /// Overrides for every arm, `section.key=value`.
    public var set: [String] = []
    /// Arms in file order, each a list of `key=value` overrides.
    public var arms: [(name: String, overrides: [String])] = []
    public var seeds: [UInt64] = [1, 2, 3]
    /// The arm the others are compared against (default: the first).
    public var baseline: String?
    /// A training reward whose first step is reported per arm (steps to threshold).
    public var threshold: Double?
    /// The budget every run gets, as overrides: `steps` (train.steps, the cap), `rollout_tokens`
    /// (train.max_rollout_tokens) and `seconds` (train.max_seconds).
    public var budget: [String] = []

    public static func == (a: ComparisonConfig, b: ComparisonConfig) -> Bool {
        a.preset == b.preset && a.config == b.config && a.set == b.set && a.seeds == b.seeds && a.baseline == b.baseline
            && a.threshold == b.threshold && a.budget == b.budget && a.arms.map(\.name) == b.arms.map(\.name) && a.arms.map(\.overrides) == b.arms.map(\.overrides)
    }

    /// Keys an arm may not set: what pairs the seeds and the budget.
    static let fixed = ["data.", "eval.", "output.", "train.steps", "train.max_rollout_tokens", "train.max_seconds", "train.seed", "rollout.seed"]

    /// Reads a comparison file (errors name the file and the key).
    public static func load(yaml text: String, file: String) throws -> ComparisonConfig {
        func fail(_ why: String) -> TrainingError { TrainingError("\(file): \(why)") }
        let node: Node
        do { node = try Yams.compose(yaml: text) ?? .mapping(.init([])) } catch { throw fail("\(error)") }
        guard let top = node.mapping else { throw fail("a comparison is a mapping (preset, config, set, arms, seeds, baseline, threshold, budget)") }
        var c = ComparisonConfig()
        for (k, v) in top {
            guard let key = k.string else { throw fail("keys must be strings") }
            switch key {
            case "preset": guard let s = v.string else { throw fail("'preset' must be a name") }; c.preset = s
            case "config": guard let s = v.string else { throw fail("'config' must be a path") }; c.config = s
            case "set":
                guard let list = v.sequence?.map({ $0.string }), !list.contains(nil) else { throw fail("'set' must be a list of section.key=value") }
                c.set = list.compactMap { $0 }
            case "arms":
                guard let arms = v.mapping, !arms.isEmpty else { throw fail("'arms' must map each arm's name to its overrides") }
                for (name, body) in arms {
                    guard let n = name.string, !n.isEmpty, n.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                        throw fail("arm names are letters, digits, '_', '-' and '.' (they name folders)")
                    }
                    let overrides = try flatten(body, prefix: "", file: file, arm: n)
                    if let bad = overrides.first(where: { o in fixed.contains { o.hasPrefix($0) } }) {
                        throw fail("arm '\(n)' sets '\(bad.split(separator: "=")[0])': arms share the data, evaluation, seeds and step budget (set them for all in 'set')")
                    }
                    c.arms.append((n, overrides))
                }
            case "seeds":
                guard let list = v.sequence?.map({ $0.int }), !list.isEmpty, !list.contains(nil), list.allSatisfy({ $0! >= 0 }) else {
                    throw fail("'seeds' must be a non-empty list of non-negative integers")
                }
                c.seeds = list.map { UInt64($0!) }
                guard Set(c.seeds).count == c.seeds.count else { throw fail("'seeds' lists a seed twice") }
            case "baseline": guard let s = v.string else { throw fail("'baseline' must name an arm") }; c.baseline = s
            case "threshold": guard let d = v.float else { throw fail("'threshold' must be a number") }; c.threshold = d
            case "budget": c.budget = try budget(v, fail: fail)
            default: throw fail("unknown key '\(key)' (known: preset, config, set, arms, seeds, baseline, threshold, budget)")
            }
        }
        guard !c.arms.isEmpty else { throw fail("'arms' is missing") }
        if let b = c.baseline, !c.arms.contains(where: { $0.name == b }) { throw fail("'baseline' \(b) is not an arm (\(c.arms.map(\.name).joined(separator: ", ")))") }
        guard Preset(rawValue: c.preset) != nil else { throw fail("'preset' \(c.preset) is not one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))") }
        return c
    }

    /// `budget: {steps: N, rollout_tokens: T, seconds: S}` (any of them) as train overrides.
    static func budget(_ node: Node, fail: (String) -> TrainingError) throws -> [String] {
        let keys = ["steps": "train.steps", "rollout_tokens": "train.max_rollout_tokens", "seconds": "train.max_seconds"]
        guard let m = node.mapping, !m.isEmpty else { throw fail("'budget' must map steps, rollout_tokens or seconds to a number") }
        return try m.map { k, v in
            guard let name = k.string, let key = keys[name] else { throw fail("'budget' keys are steps, rollout_tokens and seconds") }
            guard let d = v.float, d > 0, d.isFinite, name == "seconds" || v.int != nil else {
                throw fail("'budget.\(name)' must be a positive \(name == "seconds" ? "number" : "integer")")
            }
            return "\(key)=\(name == "seconds" ? "\(d)" : "\(v.int!)")"
        }
    }

    /// An arm's body as `key=value` overrides: dotted keys, or nested mappings, with scalar or list values.
    static func flatten(_ node: Node, prefix: String, file: String, arm: String) throws -> [String] {
        guard let m = node.mapping else {
            if prefix.isEmpty { throw TrainingError("\(file): arm '\(arm)' must be a mapping of overrides") }
            return [prefix + "=" + (try Yams.serialize(node: node).trimmingCharacters(in: .whitespacesAndNewlines))]
        }
        return try m.flatMap { k, v -> [String] in
            guard let key = k.string else { throw TrainingError("\(file): arm '\(arm)': keys must be strings") }
            return try flatten(v, prefix: prefix.isEmpty ? key : prefix + "." + key, file: file, arm: arm)
        }
    }

    /// The run config of `arm` with `seed`, over the base text (`base` names it in errors).
    func runConfig(arm: Int, seed: UInt64, baseText: String, base: String) throws -> RunConfig {
        let seeds = ["train.seed=\(seed)", "rollout.seed=\(seed)", "eval.seed=\(1234 + seed)"]
        let c = try RunConfig.load(yaml: baseText, file: base, base: Preset(rawValue: preset)!.config, overrides: set + budget + arms[arm].overrides + seeds)
        guard c.eval.after, c.data.evalSize > 0 || c.agent != nil else {
            throw TrainingError("\(base): a comparison needs the held-out evaluation after training (eval.after true, data.eval_size > 0)")
        }
        guard c.offline == nil else { throw TrainingError("\(base): tokenwise compare compares RL runs; objective '\(c.offline ?? "")' trains on fixed data and is not supported yet") }
        return c
    }
}
