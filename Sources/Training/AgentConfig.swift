import Environments
import Foundation
import Yams

extension RunConfig {
    /// Multi-turn training (`agent:`): episodes in an environment instead of one-turn prompts.
    /// Each step plays `train.prompts_per_step` environment seeds × `train.samples_per_prompt`
    /// episodes (a GRPO/GiGPO group is the episodes of one seed); `rollout` samples every action.
    public struct AgentSection: Codable, Equatable, Sendable {
        public enum Kind: String, Codable, Sendable, CaseIterable { case frozenlake, sokoban, countdown, process }
        public var environment = Kind.frozenlake
        public var frozenlake = FrozenLake.Config()
        public var sokoban = Sokoban.Config()
        public var countdown = CountdownTool.Config()
        /// An external environment speaking JSON lines (`environment: process`).
        public var process: ProcessEnvironment.Config? = nil
        /// Positions of an episode's dialogue in the cache (first prompt, actions, observations, padding).
        public var context = 1024
        /// End an episode at its first invalid action (else the environment's penalty, and on).
        public var endOnInvalid = false

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable {
            case environment, frozenlake, sokoban, countdown, process, context, endOnInvalid = "end_on_invalid"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            environment = try c.decodeIfPresent(Kind.self, forKey: .environment) ?? .frozenlake
            frozenlake = try c.decodeIfPresent(FrozenLake.Config.self, forKey: .frozenlake) ?? .init()
            sokoban = try c.decodeIfPresent(Sokoban.Config.self, forKey: .sokoban) ?? .init()
            countdown = try c.decodeIfPresent(CountdownTool.Config.self, forKey: .countdown) ?? .init()
            process = try c.decodeIfPresent(ProcessEnvironment.Config.self, forKey: .process)
            context = try c.decodeIfPresent(Int.self, forKey: .context) ?? 1024
            endOnInvalid = try c.decodeIfPresent(Bool.self, forKey: .endOnInvalid) ?? false
        }

        /// Written back with the kind's own settings only (another kind's would be refused on reading).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(environment, forKey: .environment)
            switch environment {
            case .frozenlake: try c.encode(frozenlake, forKey: .frozenlake)
            case .sokoban: try c.encode(sokoban, forKey: .sokoban)
            case .countdown: try c.encode(countdown, forKey: .countdown)
            case .process: try c.encodeIfPresent(process, forKey: .process)
            }
            try c.encode(context, forKey: .context)
            try c.encode(endOnInvalid, forKey: .endOnInvalid)
        }

        /// The `data` keys an agent run reads: how many seeds to train and evaluate on, and their draw.
        struct Seeds: Encodable {
            let data: DataSection
            init(_ data: DataSection) { self.data = data }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: DataSection.CodingKeys.self)
                try c.encode(data.trainSize, forKey: .trainSize)
                // A count of episodes, written as one (32, not 32.0); a fraction, which training refuses, as it is.
                let e = data.evalSize
                if e >= 0, e == e.rounded(), e < 1e15 { try c.encode(Int(e), forKey: .evalSize) } else { try c.encode(e, forKey: .evalSize) }
                try c.encode(data.seed, forKey: .seed)
            }
        }

        /// A fresh environment of the configured kind.
        public func make() throws -> Environment {
            switch environment {
            case .frozenlake: return try FrozenLake(frozenlake)
            case .sokoban: return try Sokoban(sokoban)
            case .countdown: return try CountdownTool(countdown)
            case .process:
                guard let process else { throw TrainingError("config: agent.environment process needs 'agent.process' with its 'command'") }
                return try ProcessEnvironment(process)
            }
        }

        func validate(_ config: RunConfig) throws {
            func need(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError("config: \(message)") } }
            try need(config.offline == nil, "'agent' trains with RL; the objective is '\(config.offline ?? "")', which trains on fixed data")
            try need(!config.credit.inputs.contains(.tree), "'agent' episodes are not tree rollouts; use a method without a rollout tree")
            try need(!config.credit.inputs.contains(.segmentValues),
                     "credit.method \(config.credit.method.rawValue) needs Monte-Carlo continuations of one-turn responses, which an environment's episodes do not have")
            // Observation tokens have no sampling entropy: statistics over an episode's tokens would count them as zeros.
            try need(!config.credit.inputs.contains(.entropies),
                     "credit.method \(config.credit.method.rawValue) reads token entropies, and an episode's observation tokens have none; use grpo, rloo, gigpo, gae or reinforce_pp")
            try need(config.rollout.temperatureSchedule.name == .constant, "'rollout.temperature_schedule' adaptive is not supported for an agent's turns (set name: constant)")
            try need(config.rollout.repetitionPenalty == 1, "'rollout.repetition_penalty' is not supported across an agent's turns (set it to 1)")
            try need(config.critic?.target != .tvm, "'critic.target' tvm labels responses by the reward's 'correct' term; an agent's episodes are scored by the environment (use target gae)")
            try need(config.reward == nil, "'agent' episodes are scored by the environment's rewards; remove the 'reward' section")
            try need((64...1 << 20).contains(context), "'agent.context' must be 64…1048576, got \(context)")
            try need(config.rollout.maxNewTokens <= context / 2, "'agent.context' (\(context)) leaves no room for two turns of rollout.max_new_tokens (\(config.rollout.maxNewTokens))")
            do {
                switch environment {
                case .frozenlake: try frozenlake.validate()
                case .sokoban: try sokoban.validate()
                case .countdown: try countdown.validate()
                case .process: _ = try make()
                }
            } catch let e as EnvironmentError { throw TrainingError("config: agent.\(e.message)") }
        }
    }
}

extension RunConfig.AgentSection {
    /// Keys the user wrote that decode but that this agent run would never read: a prompt task
    /// (episodes start from environment seeds), another environment kind's settings, a size that a
    /// fixed map overrides. Named with their line, so nothing set is silently dropped.
    func checkUnused(_ user: Node, file: String) throws {
        guard let (path, why) = unused(user).first else { return }
        let line = user.mapping.flatMap { m in
            path.dropLast().reduce(Optional(m)) { $0?[Node($1)]?.mapping }?.keys.first { $0.string == path.last }?.mark
        }.map { ":\($0.line)" } ?? ""
        throw TrainingError("\(file)\(line): '\(path.joined(separator: "."))' \(why)")
    }

    /// `user` without those keys: a run folder's config.yaml from an earlier version wrote them all.
    func droppingUnused(_ user: Node) -> Node {
        func drop(_ node: Node, _ path: ArraySlice<String>) -> Node {
            guard var m = node.mapping, let key = path.first else { return node }
            if path.count == 1 { m[Node(key)] = nil } else if let child = m[Node(key)] { m[Node(key)] = drop(child, path.dropFirst()) }
            return .mapping(m)
        }
        return unused(user).reduce(user) { drop($0, $1.path[...]) }
    }

    /// The unused keys present in `user`, each with why it is unused.
    func unused(_ user: Node) -> [(path: [String], why: String)] {
        func has(_ path: String...) -> Bool {
            path.reduce(Optional(user)) { node, k in node?.mapping?[Node(k)] }.map { $0.null == nil } ?? false
        }
        var found = [(path: [String], why: String)]()
        for field in ["task", "difficulty", "system"] where has("data", field) {
            found.append((["data", field], "has no effect in an agent run: its episodes start from environment seeds (data.train_size, eval_size and seed draw them) and the environment writes every message; remove it"))
        }
        for kind in Kind.allCases where kind != environment && has("agent", kind.rawValue) {
            found.append((["agent", kind.rawValue], "configures environment \(kind.rawValue), and agent.environment is \(environment.rawValue); remove it or change the environment"))
        }
        for field in ["size", "frozen_probability"] where environment == .frozenlake && frozenlake.map != nil && has("agent", "frozenlake", field) {
            found.append((["agent", "frozenlake", field], "has no effect with a fixed 'map' (its rows set the size and the holes); remove one of them"))
        }
        return found
    }
}
