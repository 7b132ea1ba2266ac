import Foundation
import Models
import Objectives
import XCTest
@testable import Training

/// The default model, or a skip where it is not installed (unless the integration suite requires it).
func defaultModel() throws -> Pretrained {
    do { return try Pretrained.load("default") } catch let e as ModelError where e.message.contains("is not installed") {
        if ProcessInfo.processInfo.environment["TOKENWISE_REQUIRE_DEFAULT_MODEL"] != nil { throw e }
        throw XCTSkip("default model not installed")
    }
}

/// Supervised fine-tuning on the default model (SmolLM2-135M-Instruct, its own chat template with
/// the default system message) and the bundled chat file.
final class DefaultModelSFTTests: FolderTestCase {
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/sft/arithmetic-chat.jsonl")

    /// Built turn by turn, a two-turn dialogue has the tokens of the whole rendered dialogue, and
    /// its targets are the two replies with their end tokens.
    func testTheRealTemplateSplitsIntoContextAndReplies() throws {
        let p = try defaultModel()
        let line = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")[3]
        guard case .chat(let messages, _) = try Dataset.parse(Data(line.utf8)).0 else { return XCTFail("not a chat line") }
        XCTAssertEqual(messages.count, 4)
        let x = try SFTTokens(tokenizer: p.tokenizer, chat: try p.chatTemplate(), config: .init(), system: nil).tokens(.chat(messages, answer: nil))
        let whole = try p.chatTemplate().render(messages, addGenerationPrompt: false)
        XCTAssertTrue(whole.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), whole)
        XCTAssertEqual(x.tokens, p.tokenizer.encode(String(whole.dropLast())))   // the template ends with "\n" after the last end token
        XCTAssertEqual(p.tokenizer.decode(zip(x.tokens, x.targets).filter(\.1).map(\.0)), messages[1].content + "<|im_end|>" + messages[3].content + "<|im_end|>")
    }

    /// Six steps of eight examples lower the loss on sixteen held-out examples beyond both intervals.
    func testSixStepsLowerTheHeldOutLoss() throws {
        _ = try defaultModel()
        var c = Preset.sft.config
        c.data.task = file.path
        c.data.evalSize = 16
        c.train.steps = 6
        c.output = .init()
        c.output.checkpointEvery = 0
        c.output.report = false
        c.output.saveModel = false
        let dir = root.appendingPathComponent("sft")
        try TrainingRun.start(config: c, dir: dir, console: .quiet).run()
        let evals = JSONLines.read(dir.appendingPathComponent("eval.jsonl")).map { ($0["loss"] as? [String: Any]) ?? [:] }
        func v(_ e: [String: Any], _ k: String) -> Double { (e[k] as? NSNumber)?.doubleValue ?? .nan }
        XCTAssertEqual(evals.count, 2)
        XCTAssertLessThan(v(evals[1], "mean") + v(evals[1], "ci95"), v(evals[0], "mean") - v(evals[0], "ci95"), "\(evals)")
    }
}
