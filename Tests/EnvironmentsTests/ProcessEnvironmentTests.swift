import Foundation
import Testing
@testable import Environments

/// An environment in another process: the corridor script plays as documented, and a process that
/// crashes, answers garbage, or is too slow gives an error naming it.
@Suite struct ProcessEnvironmentTests {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/environments/corridor.py").path

    func env(_ extra: [String] = [], timeout: Double = 30) throws -> ProcessEnvironment {
        try ProcessEnvironment(.init(command: ["python3", script, "3"] + extra, maxTurns: 5, timeoutSeconds: timeout))
    }

    @Test func playsTheCorridor() throws {
        let e = try env()
        let start = try e.reset(seed: 1)
        #expect(start == Observation(text: "A.E", stateKey: "0"))
        #expect(e.instructions.hasPrefix("Walk right"))
        let bad = try e.step("fly")
        #expect(!bad.valid && bad.reward == -0.1 && !bad.done)
        #expect(try e.step("right") == StepOutcome(observation: Observation(text: ".AE", stateKey: "1"), reward: 0, done: false))
        let end = try e.step("Right.")
        #expect(end.done && end.success && end.reward == 1 && end.observation == nil)
        // A second episode in the same process.
        #expect(try e.reset(seed: 2).stateKey == "0")
        // With another environment running, closing its input still ends the first at once: no
        // child holds another's pipe ends.
        let other = try env()
        _ = try other.reset(seed: 3)
        let began = Date()
        e.stop()
        #expect(Date().timeIntervalSince(began) < 0.9, "the process ended on EOF, not by a signal after the grace second")
        other.stop()
    }

    @Test func misbehavingProcessesAreClearErrors() throws {
        let crash = try env(["--crash-after", "1"])
        _ = try crash.reset(seed: 0)
        #expect(throws: EnvironmentError("environment `python3 \(script) 3 --crash-after 1`: the process exited with status 3 before replying to step")) {
            try crash.step("right")
        }
        let garbage = try env(["--garbage"])
        _ = try garbage.reset(seed: 0)
        #expect(throws: EnvironmentError("environment `python3 \(script) 3 --garbage`: reply 2 (to step) is not a JSON object: this is not json")) {
            try garbage.step("right")
        }
        let slow = try env(["--sleep", "5"], timeout: 0.5)
        _ = try slow.reset(seed: 0)
        #expect(throws: EnvironmentError("environment `python3 \(script) 3 --sleep 5`: no reply to step within 0.5 s")) { try slow.step("right") }
        let double = try env(["--double"])
        _ = try double.reset(seed: 0)
        _ = try double.step("right")
        #expect(throws: EnvironmentError("environment `python3 \(script) 3 --double`: the process wrote more than one line for its last reply (extra: "
                                         + #"{"observation": ".AE", "state": "1", "reward": 0.0, "done": false, "valid": true, "success": false}"# + "\n)")) {
            try double.step("right")
        }
        let missing = try ProcessEnvironment(.init(command: ["/nonexistent/env"]))
        #expect(throws: (any Error).self) { try missing.reset(seed: 0) }
        #expect(throws: EnvironmentError("environment: 'command' is empty")) { try ProcessEnvironment(.init(command: [])) }
    }
}
