import Foundation
import XCTest
@testable import Rewards

/// An external reward command: the lines it is sent and reads back, and every way it can fail.
final class CommandRewardTests: XCTestCase {
    /// A verifier in Python: right when the response is the answer; misbehaves on request.
    static let script = """
        import json, sys, time
        for line in sys.stdin:
            r = json.loads(line)
            y = r["response"]
            if y == "crash": sys.exit(3)
            if y == "garbage": print("not json", flush=True); continue
            if y == "no reward": print(json.dumps({"score": 1}), flush=True); continue
            if y == "slow": time.sleep(5)
            if y.startswith("steps"): print(json.dumps({"reward": 1, "steps": [{"offset": 4, "reward": -0.5}, {"offset": 1, "reward": 0.5}]}), flush=True); continue
            if y == "bad steps": print(json.dumps({"reward": 1, "steps": [{"offset": -1, "reward": 0}]}), flush=True); continue
            ok = r["answer"] is not None and y.strip() == r["answer"]
            print(json.dumps({"reward": 1.0 if ok else 0.0, "components": {"correct": 1.0 if ok else 0.0, "chars": len(y), "prompted": len(r["prompt"])}}), flush=True)
        """

    func verifier() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(UUID().uuidString).py")
        try Data(Self.script.utf8).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return "python3 \(url.path)"
    }

    func testScoresAndComponentsComeFromTheCommand() throws {
        let command = try verifier(), r = try CommandReward(command: command)
        let right = try r.checkedScore(RewardInput(prompt: "2+2?", response: " 4", answer: "4"))
        XCTAssertEqual(right.value, 1)
        XCTAssertEqual(right.components, ["correct": 1, "chars": 2, "prompted": 4])
        XCTAssertEqual(try r.checkedScore(RewardInput(response: "5", answer: "4")).value, 0)
        XCTAssertEqual(try r.checkedScore(RewardInput(response: "4", answer: nil)).value, 0)   // null answer
        // From config, inside a composition: the components keep their names.
        let c = try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [{"type": "command", "command": "\#(command)", "timeout": 10, "weight": 2}]}"#.utf8))
        let s = try c.reward.checkedScore(RewardInput(response: "4", answer: "4"))
        XCTAssertEqual(s.value, 2)
        XCTAssertEqual(s.components["command"], 1)
    }

    func testEveryFailureNamesTheCommand() throws {
        let command = try verifier(), r = try CommandReward(command: command, timeout: 0.5)
        func error(_ response: String) -> String {
            do { _ = try r.checkedScore(RewardInput(response: response, answer: "1")); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error("crash"), "reward `\(command)`: the process exited with status 3 before replying to a response")
        XCTAssertEqual(error("garbage"), "reward `\(command)`: reply 1 (to a response) is not a JSON object: not json")
        XCTAssertEqual(error("no reward"), "reward `\(command)`: the reply's 'reward' must be a finite number, got nothing")
        XCTAssertEqual(error("slow"), "reward `\(command)`: no reply to a response within 0.5 s")
        // It starts again after each failure, and without a way to throw it scores NaN.
        XCTAssertEqual(try r.checkedScore(RewardInput(response: "1", answer: "1")).value, 1)
        XCTAssertTrue(r.score(RewardInput(response: "crash")).value.isNaN)
        // Step rewards: read (in offset order) only from a term declared with steps: 1.
        let steps = try CommandReward(command: command, steps: true)
        XCTAssertTrue(steps.givesStepRewards)
        XCTAssertEqual(try steps.checkedScore(RewardInput(response: "steps 1")).steps, [StepScore(offset: 1, reward: 0.5), StepScore(offset: 4, reward: -0.5)])
        XCTAssertThrowsError(try steps.checkedScore(RewardInput(response: "1", answer: "1"))) {
            XCTAssertEqual("\($0)", "reward `\(command)`: the reply needs 'steps' (a list of {offset, reward}): the term gives step rewards")
        }
        XCTAssertThrowsError(try steps.checkedScore(RewardInput(response: "bad steps"))) { XCTAssertTrue("\($0)".contains("steps[0] must be {\"offset\": a byte offset ≥ 0"), "\($0)") }
        XCTAssertEqual(error("steps 1"), "reward `\(command)`: the reply has 'steps', but the reward term does not say it gives them (add steps: 1)")
        XCTAssertThrowsError(try CommandReward(command: "no-such-program-tw").checkedScore(RewardInput(response: "x"))) {
            XCTAssertTrue("\($0)".contains("reward `no-such-program-tw`: cannot start no-such-program-tw"), "\($0)")
        }
        for (json, message) in [(#"{"type": "command"}"#, "('command'): needs 'command' (the program and its arguments)"),
                                (#"{"type": "command", "command": " "}"#, "('command'): 'command' is empty"),
                                (#"{"type": "command", "command": "x", "timeout": 0}"#, "'timeout' must be in (0, 3600] seconds, got 0.0"),
                                (#"{"type": "command", "command": "x", "steps": 2}"#, "('command'): 'steps' must be 1 (replies carry step rewards) or 0, got 2.0")] {
            XCTAssertThrowsError(try JSONDecoder().decode(RewardConfig.self, from: Data(#"{"terms": [\#(json)]}"#.utf8))) {
                XCTAssertTrue("\($0)".contains(message), "\($0)")
            }
        }
    }
}
