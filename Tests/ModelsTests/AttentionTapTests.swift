import Foundation
import XCTest
@testable import Models
@testable import Torch

/// The attention tap (ssToken's attention score): a layer's head-mean attention probabilities.
final class AttentionTapTests: XCTestCase {
    /// Layer 0 of the tiny model (4 query heads sharing 2 key heads) by hand: each head's
    /// softmax(q·kᵀ/√d) under the causal mask is the attention the layer applies (Σ_h P_h·V_h through
    /// o_proj is its output), and the tap keeps their mean over heads.
    func testTheTapKeepsTheHeadMeanOfTheLayersOwnProbabilities() throws {
        let m = try tinyPretrained().model
        let ids = [5, 72, 101, 108, 33, 9, 140]
        let t = ids.count, c = m.config, groups = c.numAttentionHeads / c.numKeyValueHeads
        try withTorchErrors {
            try withNoGrad {
                let input = Tensor(ids.map(Int64.init), shape: [1, t])
                let tap = CausalLM.AttentionTap(layer: -2)   // layer 0 of 2
                _ = try m.hidden(input, segments: [[t]], tap: tap)
                let got = try XCTUnwrap(tap.probabilities)
                XCTAssertEqual(got.shape, [1, t, t])
                let x = m.rmsNorm(Tensor.embedding(m.embedding, input), m.weights["model.layers.0.input_layernorm.weight"]!)
                let (cos, sin) = m.rope(Tensor.arange(0, Double(t)).to(dtype: .int64).unsqueezed(dim: 0))
                func heads(_ name: String, _ n: Int) -> Tensor { m.project(x, "model.layers.0.self_attn.\(name)").view([1, t, n, c.headDim]).transposed(1, 2) }
                let q = m.rotate(heads("q_proj", c.numAttentionHeads), cos, sin), k = m.rotate(heads("k_proj", c.numKeyValueHeads), cos, sin)
                let v = heads("v_proj", c.numKeyValueHeads)
                var mean = [Double](repeating: 0, count: t * t), mixed = [Tensor]()
                for h in 0..<c.numAttentionHeads {
                    let qh = try q.select(dim: 1, index: h).squeezed(dim: 0).doubles(), kh = try k.select(dim: 1, index: h / groups).squeezed(dim: 0).doubles()
                    var p = [Double](repeating: 0, count: t * t)
                    for i in 0..<t {
                        let s = (0...i).map { j in (0..<c.headDim).reduce(0.0) { $0 + qh[i * c.headDim + $1] * kh[j * c.headDim + $1] } / Double(c.headDim).squareRoot() }
                        let top = s.max()!, e = s.map { exp($0 - top) }, z = e.reduce(0, +)
                        for j in 0...i { p[i * t + j] = e[j] / z; mean[i * t + j] += e[j] / z / Double(c.numAttentionHeads) }
                    }
                    mixed.append(Tensor(p, shape: [t, t]).to(dtype: .float32).matmul(v.select(dim: 1, index: h / groups).squeezed(dim: 0)))
                }
                let out = m.project(Tensor.cat(mixed, dim: -1).unsqueezed(dim: 0), "model.layers.0.self_attn.o_proj")
                let layer = try m.attention(x, layer: 0, cos: cos, sin: sin, mask: nil, past: .none)
                for (a, b) in zip(try out.doubles(), try layer.doubles()) { XCTAssertEqual(a, b, accuracy: 1e-5) }
                for (a, b) in zip(try got.doubles(), mean) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            }
        }
    }

    /// Packed rows: each sequence's probabilities are those it has alone, none reaches another
    /// sequence, and every row sums to 1.
    func testPackedSequencesKeepTheirOwnProbabilities() throws {
        let m = try tinyPretrained().model
        let a = [5, 72, 101], b = [108, 33, 9, 140]
        try withTorchErrors {
            try withNoGrad {
                func probs(_ ids: [Int], _ segments: [Int]) throws -> [Double] {
                    let tap = CausalLM.AttentionTap()
                    _ = try m.hidden(Tensor(ids.map(Int64.init), shape: [1, ids.count]), segments: [segments], tap: tap)
                    return try XCTUnwrap(tap.probabilities).doubles()
                }
                let packed = try probs(a + b, [3, 4]), alone = (try probs(a, [3]), try probs(b, [4]))
                let n = 7
                for i in 0..<n {
                    XCTAssertEqual(packed[(i * n)..<((i + 1) * n)].reduce(0, +), 1, accuracy: 1e-5)
                    for j in 0..<n {
                        let v = packed[i * n + j]
                        switch (i < 3, j < 3) {
                        case (true, true): XCTAssertEqual(v, alone.0[i * 3 + j], accuracy: 1e-5)
                        case (false, false): XCTAssertEqual(v, alone.1[(i - 3) * 4 + j - 3], accuracy: 1e-5)
                        default: XCTAssertEqual(v, 0)
                        }
                    }
                }
            }
        }
    }
}
