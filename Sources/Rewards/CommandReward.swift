import Foundation

/// A reward computed by another program, so users plug in Python (or any) verifiers without Swift:
/// `{type: command, command: "python3 verify.py", timeout: 30}` starts the command once and sends one
/// JSON line per response, reading one line back:
///
///     → {"prompt": "…", "response": "…", "answer": "…" or null}
///     ← {"reward": 1.0, "components": {"correct": 1.0}}            (components: optional numbers)
///
/// A late reply, one that is not JSON or lacks a finite `reward`, and a process that exits are
/// errors naming the command (the process starts again for the next response). The command is
/// split on spaces; an argument with spaces needs a wrapper script.
public final class CommandReward: RewardFunction, @unchecked Sendable {
    public let command: [String]
    public let timeout: Double
    /// Whether replies carry step rewards (`steps: 1`).
    public let givesStepRewards: Bool
    let process: JSONLinesProcess
    let lock = NSLock()
    public var name: String { "command" }

    public init(command: String, timeout: Double = 30, steps: Bool = false) throws {
        let parts = command.split(separator: " ").map(String.init)
        guard !parts.isEmpty else { throw RewardError("reward term ('command'): 'command' is empty") }
        guard timeout > 0, timeout <= 3600 else { throw RewardError("reward term ('command'): 'timeout' must be in (0, 3600] seconds, got \(timeout)") }
        self.command = parts
        self.timeout = timeout
        givesStepRewards = steps
        process = JSONLinesProcess(command: parts, timeout: timeout, label: "reward `\(command)`", error: { RewardError($0) })
    }

    public func checkedScore(_ input: RewardInput) throws -> RewardScore {
        lock.lock()
        defer { lock.unlock() }
        let reply = try process.request(["prompt": input.prompt, "response": input.response, "answer": input.answer ?? NSNull()], what: "a response")
        do { return try RewardReply.parse(reply, from: process.label, steps: givesStepRewards) } catch {
            process.stop()
            throw error
        }
    }

    /// Without a way to throw, a failed request scores NaN (training and eval call `checkedScore`).
    public func score(_ input: RewardInput) -> RewardScore { (try? checkedScore(input)) ?? RewardScore(value: .nan) }
}
