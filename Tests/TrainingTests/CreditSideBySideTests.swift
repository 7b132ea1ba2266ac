import Credit
import Foundation
import XCTest
@testable import Training

final class CreditSideBySideTests: FolderTestCase {

    func record(group: Int, size: Int, reward: Double, tokens: Int = 2, steps: [StepReward]? = nil) -> SampleRecord {
        var r = SampleRecord(prompt: "p", answer: nil, response: "r", reward: reward, components: [:], group: group, tokens: Array(repeating: 5, count: tokens),
                             pieces: Array(repeating: "x", count: tokens), advantages: [], logprobs: Array(repeating: -1, count: tokens),
                             entropies: Array(repeating: 1, count: tokens), finishReason: "stop")
        r.credit = RecordedCreditInputs(Trajectory(tokens: r.tokens, reward: reward, logprobs: r.logprobs, entropies: r.entropies),
                                        group: Credit.Group(id: "p\(group)", trajectories: Array(repeating: Trajectory(tokens: [], reward: 0), count: size)),
                                        record: r, stepRewards: steps, progress: 0.5)
        return r
    }

    /// RLOO by hand: r_i minus the mean of the others' rewards, on every token; a cut group is left out.
    func testScoresWholeGroupsByHand() throws {
        let records = [record(group: 0, size: 3, reward: 1), record(group: 0, size: 3, reward: 0), record(group: 0, size: 3, reward: 0),
                       record(group: 1, size: 2, reward: 1, tokens: 3), record(group: 1, size: 2, reward: 1, tokens: 3),
                       record(group: 2, size: 3, reward: 1)].map { (step: 4, record: $0) }
        let view = try CreditSideBySide(records: records, step: 4, methods: [.init(label: "rloo", config: CreditConfig(method: .rloo)),
                                                                              .init(label: "grpo", config: CreditConfig(method: .grpo))], source: "s")
        XCTAssertEqual(view.methods, ["rloo", "grpo"])
        XCTAssertEqual(view.rows.map(\.group), [0, 0, 0, 1, 1], "group 2 has 1 of its 3 records: not scored")
        XCTAssertEqual(view.rows.map { $0.advantages[0] }, [[1, 1], [-0.5, -0.5], [-0.5, -0.5], [0, 0, 0], [0, 0, 0]])
        XCTAssertGreaterThan(view.rows[0].advantages[1][0], 0)
        XCTAssertLessThan(view.rows[1].advantages[1][0], 0)
        XCTAssertTrue(view.text.contains("group 0 · response 1 · reward 1.000"))
        XCTAssertTrue(view.text.contains("+1.0000") && view.text.contains("-0.5000"))
        XCTAssertEqual(view.html.components(separatedBy: "<tr><th>rloo</th>").count - 1, 5)
        let json = try JSONSerialization.jsonObject(with: view.json()) as! [String: Any]
        XCTAssertEqual(((json["rows"] as! [[String: Any]])[1]["credit"] as! [String: [Double]])["rloo"], [-0.5, -0.5])
        XCTAssertEqual(CreditSideBySide.informativeStep(records), 4)
    }

    /// A method reading what the run did not record is refused with the input's name, or skipped
    /// with that reason in a comparison's page; recorded process rewards reach PURE.
    func testMissingInputsAreRefused() throws {
        let records = [record(group: 0, size: 2, reward: 1), record(group: 0, size: 2, reward: 0)].map { (step: 1, record: $0) }
        let pure = CreditSideBySide.Method(label: "pure", config: CreditConfig(method: .pure))
        XCTAssertThrowsError(try CreditSideBySide(records: records, step: 1, methods: [pure], source: "run/samples.jsonl")) {
            XCTAssertEqual("\($0)", "pure (credit.method pure) reads process rewards ('step_rewards'), which run/samples.jsonl step 1 does not record: "
                + "the run computed none (its own method and options did not read them); compare it on a run that computes them")
        }
        let lenient = try CreditSideBySide(records: records, step: 1, methods: [pure, .init(label: "g", config: CreditConfig(method: .grpo))], source: "s", lenient: true)
        XCTAssertEqual(lenient.methods, ["g"])
        XCTAssertEqual(lenient.skipped.map(\.label), ["pure"])
        XCTAssertTrue(lenient.html.contains("Not scored: pure"))
        let stepped = [record(group: 0, size: 2, reward: 1, steps: [StepReward(index: 0, reward: 1)]),
                       record(group: 0, size: 2, reward: 0, steps: [StepReward(index: 1, reward: -1)])].map { (step: 1, record: $0) }
        let scored = try CreditSideBySide(records: stepped, step: 1, methods: [pure], source: "s")
        let direct = try CreditConfig(method: .pure).estimator.estimate(CreditBatch(groups: [Credit.Group(id: "p0", trajectories: stepped.map(\.record.trajectory))], progress: 0.5))
        XCTAssertEqual(scored.rows.map { $0.advantages[0] }, direct.advantages[0], "the recorded step rewards reach PURE")
        XCTAssertEqual(stepped[1].record.trajectory.stepRewards, [StepReward(index: 1, reward: -1)])
        XCTAssertTrue(direct.advantages[0].flatMap { $0 }.contains { $0 != 0 })
        XCTAssertThrowsError(try CreditSideBySide(records: stepped, step: 2, methods: [pure], source: "s")) {
            XCTAssertEqual("\($0)", "s: no records at step 2 (steps recorded: 1…1)")
        }
        var old = records.map(\.record)
        old[0].credit = nil
        XCTAssertThrowsError(try CreditSideBySide(records: old.map { (step: 1, record: $0) }, step: 1, methods: [pure], source: "s")) {
            XCTAssertTrue("\($0)".contains("the records carry no credit inputs ('credit')"))
        }
    }

    func testWholeGroupSelectionAndBadLines() throws {
        let rs = [0, 0, 0, 1, 1, 1, 2].map { record(group: $0, size: 3, reward: 0) }
        XCTAssertEqual(SampleRecord.wholeGroups(rs, atLeast: 4).map(\.group), [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(SampleRecord.wholeGroups(rs, atLeast: 3).map(\.group), [0, 0, 0])
        XCTAssertEqual(SampleRecord.wholeGroups(rs, atLeast: 0).count, 0)
        let file = root.appendingPathComponent("samples.jsonl")
        var line = try JSONLines.object(rs[0])
        line["step"] = 1
        try Data((try JSONLines.text(line) + "\n{\"step\": 1}\n").utf8).write(to: file)
        XCTAssertThrowsError(try CreditSideBySide.read(samples: file)) {
            XCTAssertTrue("\($0)".hasPrefix("\(file.path):2: not a samples.jsonl record ("), "\($0)")
        }
    }

    /// A run's records, scored again by the run's own method, give back the advantages it trained
    /// with; the records carry the inputs the method read (TW-GRPO's position scores).
    func testRescoringARunReproducesItsAdvantages() throws {
        for method in ["tempo", "tw_grpo"] {
            let dir = root.appendingPathComponent(method)
            let config = try RunConfig.load(yaml: "{}", file: "t", base: Preset.tiny.config,
                                            overrides: ["credit.method=\(method)", "train.steps=2", "output.save_model=false", "output.report=false", "eval.after=false", "eval.before=false"])
            try TrainingRun.start(config: config, dir: dir, console: .quiet).run()
            let records = try CreditSideBySide.read(samples: dir.appendingPathComponent("samples.jsonl"))
            XCTAssertEqual(records.count, 16, "2 steps × 2 prompts × 4 samples")
            for step in [1, 2] {
                let view = try CreditSideBySide(records: records, step: step, methods: [.init(label: method, config: config.credit)], source: method)
                let recorded = records.filter { $0.step == step }.map(\.record)
                XCTAssertEqual(view.rows.count, 8)
                for (row, r) in zip(view.rows, recorded) {
                    XCTAssertEqual(row.advantages[0].count, r.advantages.count)
                    let weights = method == "tempo" ? Array(repeating: 1.0, count: r.tokens.count) : nil
                    for t in r.advantages.indices where weights != nil { XCTAssertEqual(row.advantages[0][t], r.advantages[t] * weights![t], accuracy: 1e-12) }
                }
                if method == "tw_grpo" {
                    XCTAssertNotNil(recorded[0].credit?.positionScores)
                    // The credit is advantage × a position weight in [1, α]: same sign, at least as large.
                    for (row, r) in zip(view.rows, recorded) { for t in r.advantages.indices {
                        XCTAssertGreaterThanOrEqual(abs(row.advantages[0][t]), abs(r.advantages[t]) - 1e-12)
                        XCTAssertLessThanOrEqual(abs(row.advantages[0][t]), 1.4 * abs(r.advantages[t]) + 1e-12)
                    } }
                }
            }
        }
    }
}
