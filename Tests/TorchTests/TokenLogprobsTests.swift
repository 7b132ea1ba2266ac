import XCTest
@testable import Torch

/// The fused per-token logprob/entropy kernel against finite differences and against the same
/// result built from plain ops (whose backward autograd derives).
extension AutogradTests {
    static let vocab = 11, width = 5

    func fixedWeight(_ dtype: DType) throws -> Tensor {
        Tensor.randn([Self.vocab, Self.width], generator: try Generator(seed: 3), dtype: dtype)
    }

    /// 2 rows × 4 positions; targets chosen so every chunk holds a repeated and a last-index token.
    var targets: Tensor { Tensor([0, 10, 10, 3, 7, 1, 0, 10] as [Int64], shape: [2, 4]) }

    func testTokenLogprobsGradientInHiddenMatchesFiniteDifferences() throws {
        let w = try fixedWeight(.float64), y = targets
        let x = try Tensor.randn([2, 4, Self.width], generator: try Generator(seed: 4), dtype: .float64).doubles()
        // Chunk 3 over 4 positions: one full chunk and one partial.
        gradcheck("token logprobs and entropies in hidden", x, shape: [2, 4, Self.width], tol: 1e-6) { h in
            let (lp, ent) = h.tokenLogprobs(weight: w, targets: y, chunk: 3)
            return Tensor.cat([lp, ent], dim: 1)
        }
    }

    func testTokenLogprobsGradientInWeightMatchesFiniteDifferences() throws {
        let h = Tensor.randn([2, 4, Self.width], generator: try Generator(seed: 4), dtype: .float64), y = targets
        gradcheck("token logprobs and entropies in the weight", try fixedWeight(.float64).doubles(), shape: [Self.vocab, Self.width], tol: 1e-6) { w in
            let (lp, ent) = h.tokenLogprobs(weight: w, targets: y, chunk: 2)
            return Tensor.cat([lp, ent], dim: 1)
        }
    }

    /// Values and both gradients equal those of log-softmax, gather and the entropy sum, with the
    /// loss reading logprobs only, entropies only, or both (the backward sees undefined gradients).
    func testTokenLogprobsEqualThePlainOps() throws {
        try withTorchErrors {
            let h0 = Tensor.randn([2, 4, Self.width], generator: try Generator(seed: 5))
            let w0 = try fixedWeight(.float32)
            for use in ["logprobs", "entropies", "both"] {
                func run(_ fused: Bool) throws -> (values: [Float], dh: [Float], dw: [Float]) {
                    let h = h0.detached().requiringGrad(), w = w0.detached().requiringGrad()
                    let (lp, ent): (Tensor, Tensor)
                    if fused {
                        (lp, ent) = h.tokenLogprobs(weight: w, targets: targets, chunk: 3)
                    } else {
                        let logp = h.matmul(w.transposed(0, 1)).logSoftmax(dim: -1)
                        lp = logp.gather(dim: -1, index: targets.unsqueezed(dim: -1)).squeezed(dim: -1)
                        ent = -(logp.exp() * logp).sum(dim: -1)
                    }
                    let scale = Tensor([0.5, -1, 2, 0.25, 1, -0.5, 3, 1] as [Float], shape: [2, 4])
                    let loss = use == "logprobs" ? (lp * scale).sum() : use == "entropies" ? (ent * scale).sum() : (lp * scale + ent * scale * 0.3).sum()
                    loss.backward()
                    return (try (Tensor.cat([lp, ent], dim: 1)).floats(), try h.grad!.floats(), try w.grad!.floats())
                }
                let (a, b) = (try run(true), try run(false))
                XCTAssertLessThan(maxAbsDiff(a.values, b.values), 1e-5, use)
                XCTAssertLessThan(maxAbsDiff(a.dh, b.dh), 1e-5, use)
                XCTAssertLessThan(maxAbsDiff(a.dw, b.dw), 1e-5, use)
                XCTAssertGreaterThan(b.dh.map(abs).max()!, 1e-3, "the gradient is not trivially zero (\(use))")
            }
        }
    }

    func testTokenLogprobsRefuseBadShapes() throws {
        let w = try fixedWeight(.float32)
        XCTAssertThrowsError(try withTorchErrors { _ = try Tensor.randn([2, 4]).tokenLogprobs(weight: w, targets: targets, chunk: 2).logprobs.floats() }) {
            XCTAssertTrue("\($0)".contains("token logprobs need hidden [B, T, H], weight [V, H] and targets [B, T]; got hidden [2, 4]"), "\($0)")
        }
        XCTAssertThrowsError(try withTorchErrors { _ = try Tensor.randn([2, 4, Self.width]).tokenLogprobs(weight: w, targets: targets.to(dtype: .float32), chunk: 2).logprobs.floats() }) {
            XCTAssertTrue("\($0)".contains("targets must be int64"), "\($0)")
        }
        XCTAssertThrowsError(try withTorchErrors { _ = try Tensor.randn([2, 4, Self.width]).tokenLogprobs(weight: w, targets: targets, chunk: 0).logprobs.floats() }) {
            XCTAssertTrue("\($0)".contains("chunk must be positive"), "\($0)")
        }
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}
