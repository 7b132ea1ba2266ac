import Foundation
import XCTest
@testable import Torch

final class MathTests: XCTestCase {
    func testArithmeticAndBroadcasting() {
        scoped {
            let a = t64([1, 2, 3, 4, 5, 6], [2, 3])
            let row = t64([10, 20, 30])          // [3] broadcasts over rows
            let col = t64([100, 200], [2, 1])     // [2, 1] broadcasts over columns
            assertClose(a + row, [11, 22, 33, 14, 25, 36], shape: [2, 3])
            assertClose(a - col, [-99, -98, -97, -196, -195, -194], shape: [2, 3])
            assertClose(a * row, [10, 40, 90, 40, 100, 180])
            assertClose(a / t64([2]), [0.5, 1, 1.5, 2, 2.5, 3])
            // [2,1] with [3] → [2,3] (outer)
            assertClose(col + row, [110, 120, 130, 210, 220, 230], shape: [2, 3])
            assertClose(a + 1, [2, 3, 4, 5, 6, 7])
            assertClose(1 - a, [0, -1, -2, -3, -4, -5])
            assertClose(2 * a, [2, 4, 6, 8, 10, 12])
            assertClose(a / 2, [0.5, 1, 1.5, 2, 2.5, 3])
            assertClose(6 / t64([1, 2, 3]), [6, 3, 2])
            assertClose(-t64([1, -2]), [-1, 2])
            // int64 / int64 is true division, as in PyTorch.
            assertClose(tIdx([1, 3]) / tIdx([2, 2]), [0.5, 1.5])
            XCTAssertEqual((tIdx([1]) + t32([0.5])).dtype, .float32)
            assertClose(t64([7, -7]).remainder(3), [1, 2])
            assertClose(t64([7, -7]).floorDivide(t64([2])), [3, -4])
        }
    }

    func testComparisonsAndLogic() throws {
        try withTorchErrors {
            let a = t64([1, 2, 3]), b = t64([3, 2, 1])
            XCTAssertEqual(try (a .== b).bools(), [false, true, false])
            XCTAssertEqual(try (a .!= b).bools(), [true, false, true])
            XCTAssertEqual(try (a .< b).bools(), [true, false, false])
            XCTAssertEqual(try (a .<= b).bools(), [true, true, false])
            XCTAssertEqual(try (a .> 1).bools(), [false, true, true])
            XCTAssertEqual(try (a .>= 2).bools(), [false, true, true])
            XCTAssertEqual(try (a .> 1).logicalAnd(a .< 3).bools(), [false, true, false])
            XCTAssertEqual(try (a .< 2).logicalOr(a .> 2).bools(), [true, false, true])
            XCTAssertEqual(try (a .< 2).logicalNot().bools(), [false, true, true])
            XCTAssertEqual(try t64([1, .nan, .infinity]).isNaN().bools(), [false, true, false])
            XCTAssertEqual(try t64([1, .nan, .infinity]).isFinite().bools(), [true, false, false])
        }
    }

    func testElementwiseFunctions() {
        scoped {
            let x = t64([0.5, 1, 2])
            assertClose(x.exp(), [exp(0.5), exp(1), exp(2)])
            assertClose(x.log(), [log(0.5), 0, log(2)])
            assertClose(x.sqrt(), [sqrt(0.5), 1, sqrt(2)])
            assertClose(x.rsqrt(), [1 / sqrt(0.5), 1, 1 / sqrt(2)])
            assertClose(x.pow(3), [0.125, 1, 8])
            assertClose(x.pow(t64([2, 0, -1])), [0.25, 1, 0.5])
            assertClose(x.exponentiating(base: 2), [sqrt(2), 2, 4])
            assertClose(t64([-1.5, 2]).abs(), [1.5, 2])
            assertClose(t64([-2, 0.3, 5]).clamp(min: -1, max: 1), [-1, 0.3, 1])
            assertClose(t64([-2, 5]).clamp(min: 0), [0, 5])
            assertClose(t64([-2, 5]).clamp(max: 0), [-2, 0])
            assertClose(t64([1, 5]).maximum(t64([3, 2])), [3, 5])
            assertClose(t64([1, 5]).minimum(t64([3, 2])), [1, 2])
            assertClose(t64([1, 5]).maximum(2), [2, 5])
            assertClose(t64([1, 5]).minimum(2), [1, 2])
            let s = t64([-1, 0, 2])
            assertClose(s.sigmoid(), [1 / (1 + exp(1)), 0.5, 1 / (1 + exp(-2))])
            assertClose(s.silu(), [-1 / (1 + exp(1)), 0, 2 / (1 + exp(-2))])
            // GELU: x·Φ(x) with Φ the normal CDF; Φ(-1) = 0.158655253931457, Φ(2) = 0.977249868051821.
            assertClose(s.gelu(), [-0.158655253931457, 0, 2 * 0.977249868051821])
            let tanhGelu = { (v: Double) in 0.5 * v * (1 + tanh(sqrt(2 / Double.pi) * (v + 0.044715 * v * v * v))) }
            assertClose(s.gelu(tanhApproximation: true), [tanhGelu(-1), 0, tanhGelu(2)])
            assertClose(s.relu(), [0, 0, 2])
            assertClose(s.tanh(), [tanh(-1), 0, tanh(2)])
            assertClose(s.square(), [1, 0, 4])
            assertClose(t64([-1.5, 1.5]).floor(), [-2, 1])
            assertClose(t64([-1.5, 1.2]).ceil(), [-1, 2])
            assertClose(t64([2.5, -0.7]).rounded(), [2, -1])  // half to even
            assertClose(t64([-3, 0, 4]).sign(), [-1, 0, 1])
            assertClose(t64([1e-10]).log1p(), [1e-10], tol: 1e-12)
            assertClose(t64([1e-10, 1]).expm1(), [1e-10, exp(1) - 1], tol: 1e-12)
            assertClose(t64([0, Double.pi / 2]).sin(), [0, 1], tol: 1e-12)
            assertClose(t64([0, Double.pi]).cos(), [1, -1], tol: 1e-12)
            assertClose(t64([2, -0.5]).reciprocal(), [0.5, -2])
            assertClose(t64([0, 2, -1000]).logSigmoid(), [-log(2), -log(1 + exp(-2)), -1000])
            assertClose(t64([0, 2, 1000]).softplus(), [log(2), log(1 + exp(2)), 1000])
        }
    }

    func testReductions() {
        scoped {
            let a = t64([1, 2, 3, 4, 5, 6], [2, 3])
            assertClose(a.sum(), [21], shape: [])
            assertClose(a.sum(dim: 0), [5, 7, 9], shape: [3])
            assertClose(a.sum(dim: 1, keepDim: true), [6, 15], shape: [2, 1])
            assertClose(a.sum(dims: [0, 1], keepDim: true), [21], shape: [1, 1])
            assertClose(a.sum(keepDim: true), [21], shape: [1, 1])
            assertClose(a.mean(dim: 1), [2, 5])
            assertClose(a.mean(), [3.5])
            assertClose(a.prod(dims: [1]), [6, 120])
            assertClose(a.prod(), [720])
            // Sample variance of 1,2,3 is 1; population variance 2/3.
            assertClose(a.variance(dims: [1]), [1, 1])
            assertClose(a.variance(dims: [1], correction: 0, keepDim: true), [2.0 / 3, 2.0 / 3], shape: [2, 1])
            assertClose(a.std(dims: [0]), [sqrt(4.5), sqrt(4.5), sqrt(4.5)])
            assertClose(a.variance(), [3.5])
            assertClose(a.amax(), [6])
            assertClose(a.amax(dims: [0]), [4, 5, 6])
            assertClose(a.amin(dims: [1], keepDim: true), [1, 4], shape: [2, 1])
            let mx = a.max(dim: 1)
            assertClose(mx.values, [3, 6])
            assertClose(mx.indices, [2, 2])
            let mn = t64([3, 1, 2]).min(dim: 0)
            assertClose(mn.values, [1], shape: [])
            assertClose(mn.indices, [1])
            assertClose(a.logsumexp(dim: 1), [log(exp(1) + exp(2) + exp(3)), log(exp(4) + exp(5) + exp(6))])
            assertClose(a.logsumexp(), [log((1...6).map { exp(Double($0)) }.reduce(0, +))])
            // logsumexp is stable where exp overflows.
            assertClose(t64([1000, 1000]).logsumexp(dim: 0), [1000 + log(2)])
            assertClose(t64([3, -4]).norm(), [5])
            assertClose(t64([3, -4]).norm(p: 1), [7])
            assertClose(t64([3, -4]).norm(p: .infinity), [4])
            XCTAssertEqual(try Tensor([true, false]).all().bools(), [false])
            XCTAssertEqual(try Tensor([true, false]).any().bools(), [true])
            XCTAssertEqual(try Tensor([true, false, true, true], shape: [2, 2]).all(dims: [1]).bools(), [false, true])
            assertClose(t64([1, 2, 3]).cumsum(dim: 0), [1, 3, 6])
            assertClose(a.cumsum(dim: 1), [1, 3, 6, 4, 9, 15])
            let cm = t64([3, 1, 2, 0.5]).cummin(dim: 0)
            assertClose(cm.values, [3, 1, 1, 0.5])
            assertClose(cm.indices, [0, 1, 1, 3])
            assertClose(t64([1, 3, 2]).cummax(dim: 0).values, [1, 3, 3])
            assertClose(t64([1, 5, 2]).argmax(), [1], shape: [])
            assertClose(a.argmax(dim: 0), [1, 1, 1])
            assertClose(a.argmin(dim: 1, keepDim: true), [0, 0], shape: [2, 1])
        }
    }

    func testMatmulFamily() {
        scoped {
            let a = t64([1, 2, 3, 4, 5, 6], [2, 3])
            let b = t64([1, 0, 0, 1, 1, 1], [3, 2])
            assertClose(a.matmul(b), [4, 5, 10, 11], shape: [2, 2])
            assertClose(a.matmul(t64([1, 1, 1])), [6, 15], shape: [2])  // matrix · vector
            let batch = Tensor.stack([a, 2 * a])
            let bb = Tensor.stack([b, b])
            assertClose(batch.bmm(bb), [4, 5, 10, 11, 8, 10, 20, 22], shape: [2, 2, 2])
            assertClose(batch.matmul(b), [4, 5, 10, 11, 8, 10, 20, 22], shape: [2, 2, 2])  // broadcast
            // linear: x·Wᵀ + b with W: [out=2, in=3]
            let w = t64([1, 0, 0, 0, 1, 1], [2, 3])
            assertClose(a.linear(weight: w, bias: t64([10, 20])), [11, 25, 14, 31], shape: [2, 2])
            assertClose(a.linear(weight: w), [1, 5, 4, 11])
        }
    }

    /// The chunked vocabulary projection equals `linear` (chunks that do and do not divide the rows,
    /// 2-D and 3-D inputs), without autograd and with it, where the input's gradient matches too.
    func testWideLinearMatchesLinear() throws {
        try withTorchErrors {
            let g = try Generator(seed: 9)
            let w = Tensor.randn([50, 12], generator: g)
            for (shape, chunk) in [([3, 12], 16), ([2, 4, 12], 7), ([5, 12], 50), ([5, 12], 64), ([1, 12], 1)] {
                let x = Tensor.randn(shape, generator: g)
                let plain = try withNoGrad { x.wideLinear(weight: w, chunk: chunk) }
                XCTAssertEqual(plain.shape, Array(shape.dropLast()) + [50])
                XCTAssertLessThan(try (plain - x.linear(weight: w)).abs().amax().item(), 1e-5, "\(shape) chunk \(chunk)")
                let probe = Tensor.randn(Array(shape.dropLast()) + [50], generator: g)
                let a = x.detached().requiringGrad(), b = x.detached().requiringGrad()
                (a.wideLinear(weight: w, chunk: chunk) * probe).sum().backward()
                (b.linear(weight: w) * probe).sum().backward()
                XCTAssertLessThan(try (a.grad! - b.grad!).abs().amax().item(), 1e-5, "\(shape) chunk \(chunk)")
            }
        }
        let msg = expectTorchError { _ = Tensor.ones([2, 3]).wideLinear(weight: Tensor.ones([40, 5]), chunk: 8) }
        XCTAssertTrue(msg.contains("cannot be multiplied") || msg.contains("size mismatch") || msg.contains("shape"), msg)
    }

    /// The small-batch kernel equals `linear` for every row count 1–70 (the per-row kernel's 8-row
    /// blocks and remainders; past 8 rows the 4 × 3 tiles and their row and column remainders),
    /// for K a multiple of 8 (tiles) and not (per-row), over more than one 48-row weight chunk per
    /// thread, with and without bias; other inputs fall back.
    func testSmallLinearMatchesLinear() throws {
        try withTorchErrors {
            let g = try Generator(seed: 4)
            for k in [21, 24] {
                let w = Tensor.randn([203, k], generator: g), b = Tensor.randn([203], generator: g)
                for m in 1...70 {
                    let x = Tensor.randn([m, k], generator: g)
                    XCTAssertLessThan(try (x.smallLinear(weight: w) - x.linear(weight: w)).abs().amax().item(), 1e-5, "M = \(m), K = \(k)")
                    XCTAssertLessThan(try (x.smallLinear(weight: w, bias: b) - x.linear(weight: w, bias: b)).abs().amax().item(), 1e-5)
                }
            }
            let w = Tensor.randn([37, 21], generator: g)
            let x64 = Tensor.randn([3, 21], generator: g, dtype: .float64)
            XCTAssertEqual(try x64.smallLinear(weight: w.to(dtype: .float64)).doubles(), try x64.linear(weight: w.to(dtype: .float64)).doubles())
            let wt = w.transposed(0, 1).contiguous().transposed(0, 1)   // not contiguous: falls back
            let x = Tensor.randn([2, 21], generator: g)
            XCTAssertLessThan(try (x.smallLinear(weight: wt) - x.linear(weight: w)).abs().amax().item(), 1e-5)
        }
        let msg = expectTorchError { _ = Tensor.ones([2, 3]).smallLinear(weight: Tensor.ones([4, 5])) }
        XCTAssertTrue(msg.contains("cannot be multiplied"), msg)
    }

    /// The low-precision kernel equals float32 `linear` on the dequantized weight (bf16 rounded,
    /// int8 times its row scales) for the per-row kernels, the tiles, the AVX512-BF16 kernel (K a
    /// multiple of 32) and the BLAS path past `kernelRows`, with and without bias; a bf16 weight
    /// multiplies x rounded to bf16 on every path (a bf16 engine's activations), an int8 one x as it
    /// is. int8 rows round to within half a step of the weight; bad operands are errors.
    func testLowPrecisionLinearMatchesTheDequantizedWeight() throws {
        try withTorchErrors {
            let g = try Generator(seed: 5)
            for k in [21, 24, 64] {
                let w = Tensor.randn([203, k], generator: g), b = Tensor.randn([203], generator: g)
                let (q, s) = w.quantizedRowsInt8()
                XCTAssertEqual(q.dtype, .int8)
                XCTAssertEqual(s.shape, [203])
                let int8 = q.to(dtype: .float32) * s.unsqueezed(dim: 1)
                XCTAssertLessThanOrEqual(try ((int8 - w).abs() - s.unsqueezed(dim: 1) * 0.5).amax().item(), 1e-6)
                XCTAssertEqual(try q.to(dtype: .float32).abs().amax(dims: [1]).doubles(), Array(repeating: 127, count: 203))
                let bf16 = w.to(dtype: .bfloat16)
                for m in [1, 3, 8, 9, 17, 64, 65, 100] {
                    let x = Tensor.randn([m, k], generator: g)
                    let viaBF16 = x.lowPrecisionLinear(weight: bf16, bias: b, kernelRows: 64)
                    let rounded = x.to(dtype: .bfloat16).to(dtype: .float32)
                    XCTAssertLessThan(try (viaBF16 - rounded.linear(weight: bf16.to(dtype: .float32), bias: b)).abs().amax().item(), 1e-4, "bf16 M = \(m), K = \(k)")
                    let viaInt8 = x.lowPrecisionLinear(weight: q, scale: s, kernelRows: 64)
                    XCTAssertLessThan(try (viaInt8 - x.linear(weight: int8)).abs().amax().item(), 1e-4, "int8 M = \(m), K = \(k)")
                }
                // Leading dimensions are kept: [2, 3, K] → [2, 3, N].
                XCTAssertEqual(Tensor.randn([2, 3, k], generator: g).lowPrecisionLinear(weight: bf16).shape, [2, 3, 203])
            }
            // A zero row keeps scale 1 and quantizes to zeros.
            let (zq, zs) = Tensor.zeros([2, 8]).quantizedRowsInt8()
            XCTAssertEqual(try zs.doubles(), [1, 1])
            XCTAssertEqual(try zq.to(dtype: .float32).doubles(), Array(repeating: 0, count: 16))
        }
        var msg = expectTorchError { _ = Tensor.ones([2, 8]).lowPrecisionLinear(weight: Tensor.ones([4, 8])) }
        XCTAssertTrue(msg.contains("x must be float32 [..., K] and w bfloat16 or int8 [N, K]"), msg)
        msg = expectTorchError { _ = Tensor.ones([2, 8]).lowPrecisionLinear(weight: Tensor.ones([4, 8]).to(dtype: .int8)) }
        XCTAssertTrue(msg.contains("an int8 weight needs one float32 scale per row"), msg)
        msg = expectTorchError { _ = Tensor.ones([2, 8]).lowPrecisionLinear(weight: Tensor.ones([4, 8]).to(dtype: .int8), scale: Tensor.ones([3])) }
        XCTAssertTrue(msg.contains("an int8 weight needs one float32 scale per row"), msg)
        msg = expectTorchError { _ = Tensor.ones([2, 7]).lowPrecisionLinear(weight: Tensor.ones([4, 8]).to(dtype: .bfloat16)) }
        XCTAssertTrue(msg.contains("x must be float32 [..., K]"), msg)
    }

    func testSoftmaxFamily() {
        scoped {
            let x = t64([1, 2, 3, 1, 1, 1], [2, 3])
            let z = exp(1.0) + exp(2.0) + exp(3.0)
            assertClose(x.softmax(dim: 1), [exp(1) / z, exp(2) / z, exp(3) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3])
            assertClose(x.logSoftmax(dim: 1), [1 - log(z), 2 - log(z), 3 - log(z), -log(3), -log(3), -log(3)])
            assertClose(x.softmax(dim: 0), [0.5, 1 / (1 + exp(-1)), 1 / (1 + exp(-2)), 0.5, 1 / (1 + exp(1)), 1 / (1 + exp(2))])
            // Stable for large logits.
            assertClose(t64([1000, 0]).logSoftmax(dim: 0), [0, -1000])
        }
    }

    func testEmbedding() {
        scoped {
            let w = t64([0, 0, 1, 1, 2, 2], [3, 2])
            let out = Tensor.embedding(w, tIdx([2, 0, 2, 1], [2, 2]))
            assertClose(out, [2, 2, 0, 0, 2, 2, 1, 1], shape: [2, 2, 2])
        }
    }

    /// Attention against the formula computed with plain ops.
    func testScaledDotProductAttention() throws {
        try withTorchErrors {
            let g = try Generator(seed: 5)
            let q = Tensor.randn([1, 2, 4, 8], generator: g, dtype: .float64)
            let k = Tensor.randn([1, 2, 4, 8], generator: g, dtype: .float64)
            let v = Tensor.randn([1, 2, 4, 8], generator: g, dtype: .float64)
            let scores = q.matmul(k.transposed(-1, -2)) / sqrt(8.0)
            let causal = Tensor.causalMask(4)
            let manualCausal = scores.maskedFill(causal.logicalNot(), value: -.infinity).softmax(dim: -1).matmul(v)
            let sdpaCausal = Tensor.scaledDotProductAttention(query: q, key: k, value: v, causal: true)
            assertClose(try sdpaCausal.doubles(), try manualCausal.doubles(), tol: 1e-10)
            // Explicit boolean mask (true = attend), here the causal one again plus a padded key 0.
            var allowed = [Bool]()
            for i in 0..<4 { for j in 0..<4 { allowed.append(j <= i && (j != 0 || i == 0)) } }
            let mask = Tensor(allowed, shape: [4, 4])
            let manual = scores.maskedFill(mask.logicalNot(), value: -.infinity).softmax(dim: -1).matmul(v)
            let viaMask = Tensor.scaledDotProductAttention(query: q, key: k, value: v, mask: mask)
            assertClose(try viaMask.doubles(), try manual.doubles(), tol: 1e-10)
            // Additive float mask and a custom scale.
            let additive = Tensor.zeros([4, 4], dtype: .float64).maskedFill(mask.logicalNot(), value: -.infinity)
            let scaled = Tensor.scaledDotProductAttention(query: q, key: k, value: v, mask: additive, scale: 0.5)
            let manualScaled = (q.matmul(k.transposed(-1, -2)) * 0.5 + additive).softmax(dim: -1).matmul(v)
            assertClose(try scaled.doubles(), try manualScaled.doubles(), tol: 1e-10)
            // Grouped-query attention: 2 query heads share 1 key/value head.
            let k1 = k.narrowed(dim: 1, start: 0, length: 1), v1 = v.narrowed(dim: 1, start: 0, length: 1)
            let gqa = Tensor.scaledDotProductAttention(query: q, key: k1, value: v1, causal: true, groupedQuery: true)
            let expanded = Tensor.scaledDotProductAttention(
                query: q, key: k1.expanded(to: [1, 2, 4, 8]), value: v1.expanded(to: [1, 2, 4, 8]), causal: true)
            assertClose(try gqa.doubles(), try expanded.doubles(), tol: 1e-10)
        }
    }

    func testTopkSort() {
        scoped {
            let x = t64([3, 1, 4, 1, 5, 9, 2, 6], [2, 4])
            let top = x.topk(2)
            assertClose(top.values, [4, 3, 9, 6], shape: [2, 2])
            assertClose(top.indices, [2, 0, 1, 3])
            let low = x.topk(1, dim: 1, largest: false)
            assertClose(low.values, [1, 2])
            let s = t64([3, 1, 2]).sorted()
            assertClose(s.values, [1, 2, 3])
            assertClose(s.indices, [1, 2, 0])
            let d = t64([3, 1, 2]).sorted(descending: true)
            assertClose(d.values, [3, 2, 1])
            // Stable sort keeps the order of equal keys.
            assertClose(t64([1, 0, 1, 0]).sorted(stable: true).indices, [1, 3, 0, 2])
        }
    }

    /// Empirical frequencies of multinomial draws follow the given probabilities (chi-square).
    func testMultinomial() throws {
        try withTorchErrors {
            let p: [Double] = [0.1, 0.2, 0.3, 0.4]
            let n = 20_000
            let draws = try Tensor(p).multinomial(numSamples: n, replacement: true, generator: Generator(seed: 11)).int64s()
            var counts = [Double](repeating: 0, count: 4)
            for d in draws { counts[Int(d)] += 1 }
            let chi2 = zip(counts, p).map { (o, pi) in (o - Double(n) * pi) * (o - Double(n) * pi) / (Double(n) * pi) }.reduce(0, +)
            XCTAssertLessThan(chi2, 16.27, "chi-square \(chi2) with 3 dof exceeds the 0.1% critical value")
            // Without replacement every index appears once; zero-probability entries never.
            let once = try Tensor([0.5, 0, 0.5] as [Double]).multinomial(numSamples: 2, generator: Generator(seed: 1)).int64s()
            XCTAssertEqual(Set(once), [0, 2])
            // Batched rows, reproducible.
            let rows = Tensor(rows: [[0, 1], [1, 0]] as [[Float]])
            XCTAssertEqual(try rows.multinomial(numSamples: 1, generator: Generator(seed: 3)).int64s(), [1, 0])
            let b = try Tensor.full([1000], value: 0.3, dtype: .float64).bernoulli(generator: Generator(seed: 2)).doubles()
            XCTAssertEqual(b.reduce(0, +) / 1000, 0.3, accuracy: 0.05)
        }
    }

    func testInPlaceUpdates() {
        scoped {
            let x = t64([1, 2])
            x.add_(t64([1, 1]), alpha: 2)
            assertClose(x, [3, 4])
            x.mul_(t64([2, 0.5]))
            assertClose(x, [6, 2])
            x.div_(t64([3, 2]))
            assertClose(x, [2, 1])
            x.addcmul_(t64([1, 2]), t64([3, 4]), value: 0.5)
            assertClose(x, [3.5, 5])
            x.addcdiv_(t64([1, 2]), t64([2, 4]), value: 2)
            assertClose(x, [4.5, 6])
            x.lerp_(t64([0.5, 0]), weight: 0.5)
            assertClose(x, [2.5, 3])
            x.add_(1); assertClose(x, [3.5, 4])
            x.mul_(2); assertClose(x, [7, 8])
            x.clampMax_(7.5); assertClose(x, [7, 7.5])
            x.clampMin_(7.25); assertClose(x, [7.25, 7.5])
            x.zero_(); assertClose(x, [0, 0])
            x.fill_(3); assertClose(x, [3, 3])
        }
    }

    func testDescription() {
        scoped {
            XCTAssertTrue(t64([1.5]).description.contains("1.5"))
            XCTAssertTrue(t64([1.5]).description.contains("Double"))
        }
    }
}
