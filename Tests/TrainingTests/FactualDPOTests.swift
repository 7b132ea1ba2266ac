import Foundation
import XCTest
@testable import Objectives
@testable import Torch
@testable import Training

/// F-DPO's labels in the pair file: read, checked against the objective, and flipped as the
/// authors' `flip_sample` does before the loss sees them.
final class FactualDPOTests: FolderTestCase {

    func file(_ lines: [String]) throws -> URL {
        let url = root.appendingPathComponent("pairs-\(UUID().uuidString).jsonl")
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        return url
    }

    func start(_ objective: PreferenceLoss.Config, _ data: URL) throws -> TrainingRun {
        var c = Preset.tiny.config
        c.train.steps = 1
        c.output.saveModel = false
        c.data.task = data.path
        c.data.evalSize = 2
        c.preference = objective
        return try TrainingRun.start(config: c, dir: root.appendingPathComponent("run-\(UUID().uuidString)"), console: .quiet)
    }

    func testLabelsAreReadAndChecked() throws {
        let good = try file([#"{"prompt": "p", "chosen": "a", "rejected": "b", "h_w": 1, "h_l": 0}"#,
                             #"{"prompt": "q", "chosen": "c", "rejected": "d", "h_w": false, "h_l": true}"#])
        let set = try Dataset.load(good)
        XCTAssertEqual(set.examples, [.preference(PreferencePair(prompt: "p", chosen: "a", rejected: "b", hallucinated: .init(chosen: true, rejected: false))),
                                      .preference(PreferencePair(prompt: "q", chosen: "c", rejected: "d", hallucinated: .init(chosen: false, rejected: true)))])
        XCTAssertEqual(set.unusedFields, [])
        for (line, error) in [(#"{"prompt": "p", "chosen": "a", "rejected": "b", "h_w": 1}"#, "give both 'h_w' and 'h_l' (F-DPO's hallucination labels), or neither"),
                              (#"{"prompt": "p", "chosen": "a", "rejected": "b", "h_w": 2, "h_l": 0}"#, "'h_w' must be 1 (hallucinated) or 0 (factual)"),
                              (#"{"prompt": "p", "chosen": "a", "rejected": "b", "h_w": "1", "h_l": 0}"#, "'h_w' must be 1 (hallucinated) or 0 (factual)")] {
            let bad = try file([line])
            XCTAssertThrowsError(try Dataset.load(bad)) { XCTAssertTrue("\($0)".hasSuffix(error), "\($0)") }
        }
        let plain = try file([#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#, #"{"prompt": "q", "chosen": "c", "rejected": "d"}"#])
        XCTAssertThrowsError(try start(.init(name: .fdpo), plain)) {
            XCTAssertEqual("\($0)", "\(plain.path):1: objective 'fdpo' needs each pair's hallucination labels: give 'h_w' (chosen) and 'h_l' (rejected), 1 or 0")
        }
        XCTAssertThrowsError(try start(.init(name: .dpo), good)) {
            XCTAssertEqual("\($0)", "\(good.path):1: 'h_w' and 'h_l' (F-DPO's hallucination labels) are read by objective fdpo, not 'dpo'")
        }
    }

    /// A pair whose chosen response is the hallucinated one trades its responses; the loss then
    /// sees h_l − h_w = 1 for it, and 0 for the pairs whose labels agree.
    func testPairsAreFlippedAndTheLabelsReachTheLoss() throws {
        let lines = (0..<8).map { i -> String in
            let (hw, hl) = [(1, 0), (0, 1), (0, 0), (1, 1)][i % 4]
            return "{\"prompt\": \"Q\(i)\", \"chosen\": \"yes\(i)\", \"rejected\": \"no\(i)\", \"h_w\": \(hw), \"h_l\": \(hl)}"
        }
        let data = try file(lines)
        let run = try start(.init(name: .fdpo, beta: 0.5), data)
        XCTAssertTrue(run.data.notes.contains("\(data.path): F-DPO swapped 2 of 8 pairs whose chosen response is the hallucinated one (h_w 1, h_l 0)"), "\(run.data.notes)")
        let all = run.data.trainPairs + run.data.evalPairs
        XCTAssertEqual(all.count, 8)
        for p in all {
            let i = Int(p.prompt.components(separatedBy: "Q").last!.prefix { $0.isNumber })!
            if i % 4 == 0 {
                XCTAssertEqual([p.chosen, p.rejected], ["no\(i)", "yes\(i)"], "pair \(i) is flipped")
                XCTAssertEqual(p.hallucinated, .init(chosen: false, rejected: true))
            } else {
                XCTAssertEqual([p.chosen, p.rejected], ["yes\(i)", "no\(i)"], "pair \(i) is kept")
            }
        }
        // At the first step the policy is the reference (u = 0): each pair's loss is softplus(β·δ·(h_l − h_w)).
        let pairs = run.data.trainPairs
        let (chosen, rejected) = try withTorchErrors { try withNoGrad { try run.preferenceTrainer!.sides(pairs) } }
        let dh = zip(try withTorchErrors { try rejected.hallucinated!.doubles() }, try withTorchErrors { try chosen.hallucinated!.doubles() }).map { $0 - $1 }
        XCTAssertEqual(dh, pairs.map { $0.hallucinated!.rejected != $0.hallucinated!.chosen ? 1 : 0 })
        let (loss, _, _) = try withTorchErrors { try withNoGrad { try run.preferenceTrainer!.loss(chosen: chosen, rejected: rejected) } }
        let expected = dh.map { Foundation.log(1 + Foundation.exp(0.5 * 10 * $0)) }.reduce(0, +) / Double(dh.count)
        XCTAssertEqual(try withTorchErrors { try loss.item() }, expected, accuracy: 1e-5)
    }
}
