import XCTest
@testable import Models
@testable import Objectives
@testable import Rollout
@testable import Torch
@testable import Training

/// A rollout engine apart from the learner (`rollout.weights` bf16 / int8): the learner's float32
/// logprobs become the old logprobs, the engine's become `rollout_logprobs`, and the mismatch
/// corrections act on a real ratio.
final class RolloutEngineTests: XCTestCase {
    func config(_ precision: WeightPrecision, _ mode: PolicyLossConfig.Mismatch.Mode) -> RunConfig {
        tinyTrainerConfig {
            $0.rollout.weights = precision
            $0.objective.mismatch.mode = mode
            $0.objective.mismatch.cap = 1.001   // TIS truncates wherever the learner is more likely than the engine
        }
    }

    /// The old logprobs are the learner's teacher-forced float32 ones, the rollout logprobs the
    /// engine's, they differ, and the step reports the mismatch; TIS and IcePop weights are not 1.
    func testTheLearnerRecomputesOldLogprobsAndTheCorrectionsSeeARealRatio() throws {
        for (precision, mode) in [(WeightPrecision.bf16, PolicyLossConfig.Mismatch.Mode.tis), (.int8, .icepop), (.bf16, .seqMaskTIS)] {
            let name = "\(precision) \(mode)"
            let (t, metrics) = try trainTiny(config(precision, mode), steps: 1)
            let inputs = try XCTUnwrap(t.lastInputs)
            let engine = inputs.rows.map { inputs.rollouts.rolled[$0].completion.logprobs }
            XCTAssertEqual(try XCTUnwrap(inputs.rolloutLogprobs, name), engine)
            let learner = try XCTUnwrap(inputs.oldLogprobs, name)
            XCTAssertEqual(inputs.groups.flatMap { $0.trajectories.map(\.logprobs) }, learner, "credit reads the learner's logprobs")
            let gap = zip(learner.flatMap { $0 }, engine.flatMap { $0 }).map { abs($0 - $1) }
            XCTAssertGreaterThan(gap.max()!, 1e-5, name)
            XCTAssertLessThan(gap.max()!, 0.1, name)
            let k1 = try XCTUnwrap(metrics["mismatch/k1"], name), k3 = try XCTUnwrap(metrics["mismatch/k3"], name)
            XCTAssertNotEqual(k1, 0, name)
            XCTAssertGreaterThan(k3, 0, name)
            XCTAssertGreaterThan(try XCTUnwrap(metrics["mismatch/ratio_max"]), 1, name)
            XCTAssertNotNil(metrics["mismatch/masked_fraction"])
            XCTAssertEqual(metrics["rollout_copy_mb"]!, Double(t.sampler.weights!.bytes) / 1e6)
            if mode == .tis {
                XCTAssertGreaterThan(metrics["mismatch/truncated_fraction"]!, 0, name)
                XCTAssertNotEqual(try XCTUnwrap(metrics["mismatch_weight_mean"], name), 1, accuracy: 1e-7, name)
            }
        }
    }

    /// The same rollouts (same seeds, same engine) with and without TIS: the correction changes
    /// the update, so the trained weights differ.
    func testTISChangesTheGradient() throws {
        let (with, _) = try trainTiny(config(.bf16, .tis), steps: 1)
        let (without, _) = try trainTiny(config(.bf16, .none), steps: 1)
        XCTAssertEqual(with.lastInputs!.rowResponses, without.lastInputs!.rowResponses, "the same rollouts")
        let a = try withTorchErrors { try with.optimizer.parameters.flatMap { try $0.floats() } }
        let b = try withTorchErrors { try without.optimizer.parameters.flatMap { try $0.floats() } }
        XCTAssertGreaterThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-7)
    }

    /// A fp32 engine is the learner: a correction is refused with what would supply it; the key is
    /// checked and written.
    func testTheEngineIsConfigured() throws {
        XCTAssertThrowsError(try config(.fp32, .tis).validate()) {
            XCTAssertEqual("\($0)", "config: objective.mismatch tis needs rollout-engine logprobs ('rollout_logprobs'), which differ from the learner's "
                + "only with a rollout engine apart from it; rollout.weights fp32 samples with the learner's own weights, so the correction would "
                + "be exactly 1: set rollout.weights bf16 or int8 (a low-precision rollout copy), or objective.mismatch.mode none")
        }
        let loaded = try RunConfig.load(yaml: "rollout:\n  weights: int8\n")
        XCTAssertEqual(loaded.rollout.weights, .int8)
        XCTAssertEqual(loaded.evalSampling.weights, .fp32, "evaluation measures the learner")
        XCTAssertTrue(try loaded.yaml().contains("weights: int8"))
        XCTAssertThrowsError(try RunConfig.load(yaml: "rollout:\n  weights: int4\n", file: "c.yaml")) {
            XCTAssertEqual("\($0)", "c.yaml:2: 'rollout.weights' is 'int4'; expected one of fp32, bf16, int8")
        }
    }
}
