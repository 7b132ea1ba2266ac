import Foundation
import XCTest
@testable import Objectives
@testable import Torch

/// AlignDistil's token loss: the official trainer's numbers and gradients (fixture), values by
/// hand, its reductions, and its config's errors.
final class AlignDistilTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Expected: Decodable {
                let loss: [Double], weight: [Double], kl_dpo: [Double], kl_reverse: [Double], reward: [Double], batch_loss: Double, grad: [[Double]]
            }
            let teacher: String, beta: Double, beta2: Double, temperature: Double, lengths: [Int]
            let student: [[Double]], dpo: [[Double]], reverse: [[Double]], expected: Expected
        }
        let cases: [Case]
    }

    func matrix(_ rows: [[Double]]) -> Tensor { Tensor(rows.flatMap { $0 }, shape: [rows.count, rows[0].count]) }

    /// scripts/reference/aligndistil_official.py re-implements songmzhang/AlignDistil @f80ca4e's
    /// off-policy loss for the four teachers; Tokenwise's terms, batch loss (per-response mean,
    /// then the mean over responses) and its gradient in the student's logits agree.
    func testTheOfficialCodesNumbers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/aligndistil_official.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 12)
        for (k, c) in fixture.cases.enumerated() {
            var config = AlignDistilLoss.Config(dpoModel: "d", reverseModel: "r")
            config.teacher = try XCTUnwrap(AlignDistilLoss.Teacher(rawValue: c.teacher))
            config.beta = c.beta; config.beta2 = c.beta2; config.temperature = c.temperature
            try withTorchErrors {
                let s = matrix(c.student).to(dtype: .float32).requiringGrad()
                let t = AlignDistilLoss.terms(student: s, dpo: matrix(c.dpo), reverse: matrix(c.reverse), config)
                let e = c.expected
                func near(_ x: Tensor, _ y: [Double], _ what: String) throws {
                    for (a, b) in zip(try x.doubles(), y) { XCTAssertEqual(a, b, accuracy: 2e-5 * Swift.max(1, abs(b)), "case \(k) \(what)") }
                }
                try near(t.loss, e.loss, "loss"); try near(t.weight, e.weight, "weight")
                try near(t.klDPO, e.kl_dpo, "kl_dpo"); try near(t.klReverse, e.kl_reverse, "kl_reverse"); try near(t.reward, e.reward, "reward")
                let share = c.lengths.flatMap { n in Array(repeating: 1 / Double(n) / Double(c.lengths.count), count: n) }
                let batch = (t.loss * Tensor(share).to(dtype: .float32)).sum()
                XCTAssertEqual(try batch.item(), e.batch_loss, accuracy: 2e-5 * Swift.max(1, abs(e.batch_loss)), "case \(k)")
                batch.backward()
                try near(try XCTUnwrap(s.grad), e.grad.flatMap { $0 }, "grad")
            }
        }
    }

    /// Two tokens over a vocabulary of 2, by hand: student logits (0, 0), DPO (ln 3, 0) → p_d = (¾, ¼),
    /// reverse (0, 0) → p_r = (½, ½); Σ|p_d − p_r| = ½, so with β₂ 2: α = 1 + 10⁻³; the teacher's
    /// logits (1 + α)·ln 3 and 0.
    func testTheTeacherByHand() throws {
        var c = AlignDistilLoss.Config(dpoModel: "d", reverseModel: "r")
        c.beta = 0.1; c.beta2 = 2
        try withTorchErrors {
            let t = AlignDistilLoss.terms(student: Tensor([0.0, 0], shape: [1, 2]), dpo: Tensor([log(3.0), 0], shape: [1, 2]), reverse: Tensor([0.0, 0], shape: [1, 2]), c)
            let alpha = 1.001, z = (1 + alpha) * log(3.0), q = 1 / (1 + exp(-z))              // π*(first)
            let kl = 0.5 * log(0.5 / q) + 0.5 * log(0.5 / (1 - q))
            XCTAssertEqual(try t.weight.item(), alpha, accuracy: 1e-6)
            XCTAssertEqual(try t.loss.item(), 0.1 / alpha * kl, accuracy: 1e-6)
            XCTAssertEqual(try t.klDPO.item(), 0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25), accuracy: 1e-6)
            XCTAssertEqual(try t.klReverse.item(), 0, accuracy: 1e-7)
            XCTAssertEqual(try t.reward.item(), 0.1 * (0.5 * log(1.5) + 0.5 * log(0.5)), accuracy: 1e-6)
        }
    }

    /// Reductions: teachers that agree leave the DPO model as the teacher (α = 10⁻³), so the loss is
    /// (β/10⁻³)·KL(π_θ ‖ π_dpo); theorem1 with β = β₂ is plain distillation toward the DPO model,
    /// scaled by β₂; a student equal to the teacher has zero loss and gradient.
    func testReductions() throws {
        try withTorchErrors {
            let s = Tensor([0.3, -1, 2, 0.5, 0.5, 0], shape: [2, 3]), d = Tensor([1.0, 0, -1, 0, 2, 1], shape: [2, 3])
            var c = AlignDistilLoss.Config(dpoModel: "d", reverseModel: "r")
            let agree = AlignDistilLoss.terms(student: s, dpo: d, reverse: d, c)
            for (a, b) in zip(try agree.loss.doubles(), try agree.klDPO.doubles()) { XCTAssertEqual(a, c.beta / 1e-3 * b, accuracy: 1e-4 * Swift.max(1, abs(a))) }
            c.teacher = .theorem1; c.beta = 2; c.beta2 = 2
            let plain = AlignDistilLoss.terms(student: s, dpo: d, reverse: s, c)
            for (a, b) in zip(try plain.loss.doubles(), try plain.klDPO.doubles()) { XCTAssertEqual(a, 2 * b, accuracy: 1e-5) }
            let student = d.to(dtype: .float32).requiringGrad()
            let same = AlignDistilLoss.terms(student: student, dpo: d, reverse: d, c)
            XCTAssertEqual(try same.loss.sum().item(), 0, accuracy: 1e-6)
            same.loss.sum().backward()
            XCTAssertLessThan(try XCTUnwrap(student.grad).doubles().map(abs).max() ?? 1, 1e-6)
        }
    }

    func testBadConfigsNameTheKey() {
        let cases: [(String, (inout AlignDistilLoss.Config) -> Void)] = [
            ("objective 'aligndistil': 'dpo_model' is empty", { $0.dpoModel = "" }),
            ("objective 'aligndistil': 'reverse_model' is empty", { $0.reverseModel = "" }),
            ("objective 'aligndistil': 'beta' must be positive and finite, got 0.0", { $0.beta = 0 }),
            ("objective 'aligndistil': 'beta2' must be positive and finite, got -1.0", { $0.beta2 = -1 }),
            ("objective 'aligndistil': 'temperature' must be positive and finite, got inf", { $0.temperature = .infinity }),
        ]
        for (message, edit) in cases {
            var c = AlignDistilLoss.Config(dpoModel: "d", reverseModel: "r")
            edit(&c)
            XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }
}
