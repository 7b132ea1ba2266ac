import Foundation
import Testing
@testable import Credit

@Suite struct ConfigTests {
    @Test func everyMethodRoundTripsWithDefaults() throws {
        for method in CreditMethod.allCases {
            let c = CreditConfig(method: method)
            #expect(c.method == method)
            let data = try JSONEncoder().encode(c)
            #expect(try JSONDecoder().decode(CreditConfig.self, from: data) == c, "\(method)")
        }
        // Resolved params are written out under their snake_case names.
        let text = String(decoding: try JSONEncoder().encode(CreditConfig(method: .tempo)), as: UTF8.self)
        for key in ["std_normalize", "value_source", "td_weight", "eps", "scale"] { #expect(text.contains("\"\(key)\""), "\(key)") }
    }

    @Test func paramsDecodeByName() throws {
        #expect(try config(#"{"method":"grpo","params":{"std":"biased","eps":1e-8,"scale":"batch"}}"#)
            == .grpo(.init(std: .biased, eps: 1e-8, scale: .batch)))
        #expect(try config(#"{"method":"tempo","params":{"std_normalize":false,"td_weight":0.5}}"#)
            == .tempo(.init(grpo: .init(stdNormalize: false), tdWeight: 0.5)))
        #expect(try config(#"{"method":"tw_grpo"}"#) == .twGRPO(.init(grpo: .init(eps: 1e-4), alpha: 1.4)))
        #expect(try config(#"{"method":"hicra","params":{"grams":[[1,2]]}}"#) == .hicra(.init(grams: [[1, 2]])))
    }

    @Test func badConfigsNameTheProblem() {
        #expect(message { _ = try config(#"{"method":"ppo"}"#) }
            == "unknown method 'ppo' (known: grpo, rloo, reinforce_pp, gae, tempo, spo_chain, spo_tree, pure, gigpo, hapo, tw_grpo, d3s, hicra, istar)")
        #expect(message { _ = try config(#"{"method":"grpo","params":{"epsilon":1}}"#) }
            == "unknown param 'epsilon' for method 'grpo' (known: eps, scale, std, std_normalize)")
        #expect(message { _ = try config(#"{"method":"gae","params":{"lam":"high"}}"#) } == "method 'gae': param 'lam' must be a number")
        #expect(message { _ = try config(#"{"method":"grpo","params":{"std":"sample"}}"#) }
            == "method 'grpo': param 'std' is 'sample'; expected one of 'unbiased', 'biased'")
        #expect(message { _ = try config(#"{"method":"gae","params":{"gamma":1.5}}"#) } == "method 'gae': param 'gamma' must be in [0, 1], got 1.5")
        #expect(message { _ = try config(#"{"params":{}}"#) }.hasPrefix("credit config needs 'method'"))
        #expect(message { _ = try config(#"{"method":"grpo","params":[1]}"#) } == "method 'grpo': 'params' must be an object")
    }

    @Test func requestParsingAndErrors() throws {
        let json = #"""
        {"method": "grpo", "progress": 0.5, "groups": [{"id": "q1", "trajectories": [
          {"tokens": [1, 2], "reward": 1, "entropies": [0.1, 0.2], "step_rewards": [{"index": 1, "reward": 0.5}]},
          {"tokens": [3], "reward": 0, "states": [{"index": 0, "key": "s"}], "tree_path": ["a"], "segments": [0]}]}]}
        """#
        let req = try CreditRequest.parse(Data(json.utf8))
        #expect(req.batch.progress == 0.5)
        #expect(req.batch.groups[0].trajectories[0].stepRewards == [StepReward(index: 1, reward: 0.5)])
        #expect(req.batch.groups[0].trajectories[1].treePath == ["a"])
        let result = try req.config.estimator.estimate(req.batch)
        let out = String(decoding: try CreditResponse(request: req, result: result).json(), as: UTF8.self)
        #expect(out.contains(#""id":"q1""#) && out.contains(#""weights":[1,1]"#))

        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"grpo","groups":[{"id":"q","trajectories":[{"tokens":[1]}]}]}"#.utf8), source: "f.json") }
            == "f.json: groups[0].trajectories[0].reward is missing")
        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"grpo","groups":[{"id":"q","trajectories":[{"tokens":"a","reward":1}]}]}"#.utf8)) }
            == "input: groups[0].trajectories[0].tokens must be a list")
        #expect(message { _ = try CreditRequest.parse(Data("{".utf8)) }.hasPrefix("input: not valid JSON"))
        // Foundation calls a token id of 1e30 "not valid JSON"; the message now names the number.
        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"grpo","groups":[{"id":"q","trajectories":[{"tokens":[3, 1e30],"reward":1}]}]}"#.utf8)) }
            == "input: groups[0].trajectories[0].tokens[1] is 1e+30; it must be a whole number (at most 9223372036854775807 in size)")
        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"nope","groups":[]}"#.utf8), source: "stdin") }.hasPrefix("stdin: unknown method 'nope'"))
        // A misspelled field is an error, not silently dropped (the method would run without it).
        let typo = #"{"method":"gae","groups":[{"id":"q","trajectories":[{"tokens":[1],"reward":1,"values":[0]},{"tokens":[1],"reward":0,"value":[0]}]}]}"#
        #expect(message { _ = try CreditRequest.parse(Data(typo.utf8), source: "f.json") }
            == "f.json: groups[0].trajectories[1]: unknown field 'value' (known: action_mask, entropies, kl, logprobs, planning, ratios, reward, segment_values, "
               + "segments, states, step_rewards, token_rewards, tokens, tree_path, turn_rewards, values)")
        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"grpo","group":[]}"#.utf8)) }
            == "input: unknown field 'group' (known: groups, method, params, progress)")
        #expect(message { _ = try CreditRequest.parse(Data(#"{"method":"grpo","groups":[{"id":"q","trajectories":[],"position_score":[]}]}"#.utf8)) }
            == "input: groups[0]: unknown field 'position_score' (known: id, position_scores, trajectories)")
        // Rewards whose sum overflows a double gave an encoder failure (found by the fuzz suite).
        let huge = try CreditRequest.parse(Data(#"{"method":"rloo","groups":[{"id":"q","trajectories":[{"tokens":[1],"reward":1.7e308},{"tokens":[2],"reward":1.7e308},{"tokens":[3],"reward":-1.7e308}]}]}"#.utf8))
        let overflow = try huge.config.estimator.estimate(huge.batch)
        #expect(message { _ = try CreditResponse(request: huge, result: overflow).json() }
            == "groups[0].trajectories[0].advantages[0] is inf: the inputs overflow double precision")
    }

    @Test func batchLevelValidation() {
        let g = group([(2, 1)])
        #expect(message { _ = try run(.grpo(.init()), [g], progress: 1.5) } == "progress must be in [0, 1], got 1.5")
        #expect(message { _ = try run(.grpo(.init()), [g, g]) } == "group id 'q' appears twice")
        var t = traj([1, 2], 1)
        t.entropies = [0.1, .nan]
        #expect(message { _ = try run(.grpo(.init()), [Group(id: "q", trajectories: [t])]) } == "group 'q', trajectory 0: 'entropies'[1] is not finite (nan)")
        t.entropies = nil
        t.stepRewards = [StepReward(index: 2, reward: 1)]
        #expect(message { _ = try run(.grpo(.init()), [Group(id: "q", trajectories: [t])]) }
            == "group 'q', trajectory 0: 'step_rewards'[0].index 2 is outside the response (2 tokens)")
    }
}
