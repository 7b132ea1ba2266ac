import Foundation
import XCTest
@testable import Models
@testable import Rollout
@testable import Torch

/// Turns sampled with the KV cache kept across turns have the logprobs of a teacher-forced pass
/// over the whole dialogue, and a dialogue samples the same whatever else is in the batch.
final class DialogueSamplerTests: XCTestCase {
    let config = SamplingConfig(temperature: 1, maxNewTokens: 5, seed: 0)

    /// Three dialogues with prompts and observations of different lengths, two turns each.
    func play(_ m: CausalLM, _ tok: Tokenizer, dialogues: [Int], leaving: Int? = nil) throws -> (DialogueSampler, [[(start: Int, c: Completion)]]) {
        let prompts = [[65, 66, 67, 68, 69, 70, 71], [72, 73], [74, 75, 76, 77]], observations = [[80, 81], [82, 83, 84, 85, 86], [87]]
        let d = try DialogueSampler(sampler: Sampler(model: m, tokenizer: tok), seeds: dialogues.map { UInt64(100 + $0) }, capacity: 64)
        var turns = dialogues.map { _ in [(start: Int, c: Completion)]() }
        // Dialogue ids are positions in `dialogues`; which prompt and observation each gets is its label.
        try d.append(dialogues.map { prompts[$0] })
        for turn in 0..<2 {
            if turn > 0, let leaving { d.keep(Set(d.live).subtracting([leaving])) }
            if turn > 0 { try d.append(d.live.map { observations[dialogues[$0]] }) }
            let starts = d.live.map { d.history[$0].count }
            for (k, c) in try d.sampleTurn(config: config).enumerated() {
                XCTAssertEqual(c.promptIndex, d.live[k])
                turns[c.promptIndex].append((starts[k], c))
            }
        }
        return (d, turns)
    }

    func testCachedTurnsMatchATeacherForcedPass() throws {
        let (m, tok) = try tinyModel(sharpness: 4)
        let (d, turns) = try play(m, tok, dialogues: [0, 1, 2])
        for (i, dialogue) in turns.enumerated() {
            XCTAssertEqual(dialogue.count, 2)
            for (start, c) in dialogue {
                XCTAssertFalse(c.tokens.isEmpty)
                XCTAssertEqual(Array(d.history[i][start..<(start + c.tokens.count)]), c.tokens)
                let tf = try teacherForced(m, prompt: Array(d.history[i][..<start]), tokens: c.tokens)
                for (a, b) in zip(c.logprobs, tf.lp) { XCTAssertEqual(a, b, accuracy: 1e-4, "dialogue \(i) turn at \(start)") }
                for (a, b) in zip(c.entropies, tf.ent) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            }
        }
        // The history holds every real token: prompt, actions, observation, actions.
        XCTAssertEqual(d.history[1].prefix(2), [72, 73])
        XCTAssertEqual(Array(d.history[1][(2 + turns[1][0].c.tokens.count)...].prefix(5)), [82, 83, 84, 85, 86])
    }

    /// The first dialogue leaving moves the last into its row: the others' cached turns still
    /// match a teacher-forced pass and sample what they would have.
    func testDialoguesLeavingReorderTheRowsAndChangeNothingElse() throws {
        let (m, tok) = try tinyModel(sharpness: 4)
        let (d, turns) = try play(m, tok, dialogues: [0, 1, 2], leaving: 0)
        XCTAssertEqual(d.live, [2, 1])
        let stayed = try play(m, tok, dialogues: [0, 1, 2]).1
        XCTAssertEqual(turns[0].count, 1)
        for i in [1, 2] {
            XCTAssertEqual(turns[i].map(\.c.tokens), stayed[i].map(\.c.tokens), "dialogue \(i)")
            let (start, c) = turns[i][1]
            let tf = try teacherForced(m, prompt: Array(d.history[i][..<start]), tokens: c.tokens)
            for (a, b) in zip(c.logprobs, tf.lp) { XCTAssertEqual(a, b, accuracy: 1e-4, "dialogue \(i)") }
        }
    }

    func testADialogueSamplesTheSameInAnyBatch() throws {
        let (m, tok) = try tinyModel(sharpness: 2)
        let alone = try play(m, tok, dialogues: [1]).1[0].map(\.c.tokens)
        let together = try play(m, tok, dialogues: [0, 1, 2]).1[1].map(\.c.tokens)
        XCTAssertEqual(alone, together)
    }

    func testFinishedDialoguesLeaveAndErrorsAreNamed() throws {
        let (m, tok) = try tinyModel()
        let d = try DialogueSampler(sampler: Sampler(model: m, tokenizer: tok), seeds: [1, 2, 3], capacity: 20)
        XCTAssertThrowsError(try d.sampleTurn(config: config)) { XCTAssertTrue("\($0)".contains("append the first observation"), "\($0)") }
        try d.append([[65], [66, 67], [68]])
        _ = try d.sampleTurn(config: config)
        d.keep([0, 2])
        XCTAssertEqual(d.live, [0, 2])
        XCTAssertThrowsError(try d.append([[1]])) { XCTAssertTrue("\($0)".contains("1 chunks for 2 live dialogues"), "\($0)") }
        XCTAssertThrowsError(try d.append([[1], []])) { XCTAssertTrue("\($0)".contains("chunk is empty"), "\($0)") }
        XCTAssertThrowsError(try d.append([Array(repeating: 1, count: 30), [1]])) { XCTAssertTrue("\($0)".contains("do not fit the cache"), "\($0)") }
        let next = try d.sampleTurn(config: config)
        XCTAssertEqual(next.map(\.promptIndex), [0, 2])
    }
}
