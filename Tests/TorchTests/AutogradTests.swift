import XCTest
@testable import Torch

final class AutogradTests: XCTestCase {
    /// Compares autograd's gradient of Σ w·f(x) with central finite differences, in float64.
    func gradcheck(_ name: String, _ values: [Double], shape: [Int]? = nil, eps: Double = 1e-6, tol: Double = 1e-6,
                   file: StaticString = #filePath, line: UInt = #line, _ f: @escaping (Tensor) -> Tensor) {
        do {
            try withTorchErrors {
                let shape = shape ?? [values.count]
                let x = Tensor(values, shape: shape).requiringGrad()
                let y0 = f(x)
                let w = Tensor.randn(y0.shape, generator: try Generator(seed: 99), dtype: .float64)
                let loss = { (input: Tensor) in (f(input) * w).sum() }
                loss(x).backward()
                guard let g = x.grad else { return XCTFail("\(name): no gradient", file: file, line: line) }
                let analytic = try g.doubles()
                var numeric = [Double]()
                try withNoGrad {
                    for i in 0..<values.count {
                        var plus = values, minus = values
                        plus[i] += eps
                        minus[i] -= eps
                        let lp = try loss(Tensor(plus, shape: shape)).item()
                        let lm = try loss(Tensor(minus, shape: shape)).item()
                        numeric.append((lp - lm) / (2 * eps))
                    }
                }
                assertClose(analytic, numeric, tol: tol, "gradient of \(name)", file: file, line: line)
            }
        } catch {
            XCTFail("\(name): \(error)", file: file, line: line)
        }
    }

    let v: [Double] = [0.3, -1.2, 0.7, 2.1, -0.4, 1.5]
    let pos: [Double] = [0.3, 1.2, 0.7, 2.1, 0.4, 1.5]

    func testGradientsAgainstFiniteDifferences() {
        let b = t64([0.5, -1, 2, 0.1, 0.2, -0.3], [2, 3])
        gradcheck("add/mul broadcast", v, shape: [2, 3]) { $0 * t64([1, 2, 3]) + $0 }
        gradcheck("div", v, shape: [2, 3]) { $0 / (b.abs() + 1) + 1 / ($0 * $0 + 1) }
        gradcheck("exp", v) { $0.exp() }
        gradcheck("log", pos) { $0.log() }
        gradcheck("sqrt", pos) { $0.sqrt() }
        gradcheck("rsqrt", pos) { $0.rsqrt() }
        gradcheck("pow", pos) { $0.pow(2.5) }
        gradcheck("tanh", v) { $0.tanh() }
        gradcheck("sigmoid", v) { $0.sigmoid() }
        gradcheck("silu", v) { $0.silu() }
        gradcheck("gelu", v) { $0.gelu() }
        gradcheck("gelu tanh", v) { $0.gelu(tanhApproximation: true) }
        gradcheck("softmax", v, shape: [2, 3]) { $0.softmax(dim: -1) }
        gradcheck("log_softmax", v, shape: [2, 3]) { $0.logSoftmax(dim: 0) }
        gradcheck("logsumexp", v, shape: [2, 3]) { $0.logsumexp(dim: 1) }
        gradcheck("mean/var keepdim", v, shape: [2, 3]) {
            ($0 - $0.mean(dim: 1, keepDim: true)) / ($0.variance(dims: [1], keepDim: true) + 1).sqrt()
        }
        gradcheck("matmul", v, shape: [2, 3]) { $0.matmul(b.transposed(0, 1)) }
        gradcheck("linear", v, shape: [2, 3]) { $0.linear(weight: b, bias: t64([1, 2])) }
        gradcheck("bmm", v, shape: [1, 2, 3]) { $0.bmm($0.transposed(1, 2)) }
        gradcheck("gather", v, shape: [2, 3]) { $0.gather(dim: 1, index: tIdx([2, 0, 1, 1], [2, 2])) }
        gradcheck("clamp", v) { $0.clamp(min: -1, max: 1) }
        gradcheck("abs", v) { $0.abs() }
        gradcheck("amax", v, shape: [2, 3]) { $0.amax(dims: [1]) }
        gradcheck("where/maskedFill", v) { Tensor.where($0 .> 0, $0 * $0, -$0).maskedFill(Tensor([true, false, false, false, false, true]), value: 0) }
        gradcheck("cumsum", v) { $0.cumsum(dim: 0) }
        gradcheck("embedding", v, shape: [3, 2]) { Tensor.embedding($0, tIdx([2, 0, 2])) }
        gradcheck("view ops", v, shape: [2, 3]) {
            Tensor.cat([$0.transposed(0, 1).reshaped([6]), $0.narrowed(dim: 1, start: 1, length: 2).flattened()]).unsqueezed(dim: 0)
        }
        gradcheck("sdpa causal", v + pos + v.map { $0 * 0.5 }, shape: [1, 1, 3, 6]) { q in
            Tensor.scaledDotProductAttention(query: q, key: q * 0.5, value: q.tanh(), causal: true)
        }
        gradcheck("norm", v) { $0.norm().unsqueezed(dim: 0) }
        gradcheck("logSigmoid/softplus", v) { $0.logSigmoid() + $0.softplus() }
        gradcheck("cummin", v) { $0.cummin(dim: 0).values }
    }

    func testBackwardAccumulatesAndZeroGradClears() throws {
        try withTorchErrors {
            let x = t64([1, 2, 3]).requiringGrad()
            XCTAssertTrue(x.requiresGrad)
            XCTAssertTrue(x.isLeaf)
            XCTAssertNil(x.grad)
            (x * x).sum().backward()
            assertClose(x.grad!, [2, 4, 6])
            (x * 3).sum().backward()  // accumulates
            assertClose(x.grad!, [5, 7, 9])
            x.zeroGrad()
            XCTAssertNil(x.grad)
            // Non-scalar output with an explicit upstream gradient.
            (x * x).backward(t64([1, 0, 2]))
            assertClose(x.grad!, [2, 0, 12])
            x.grad = nil
            XCTAssertNil(x.grad)
        }
    }

    func testRetainGraphAllowsASecondBackward() throws {
        try withTorchErrors {
            let x = t64([2]).requiringGrad()
            let y = (x * x * x).sum()
            y.backward(retainGraph: true)
            y.backward()
            assertClose(x.grad!, [24])  // 2 · 3x² at x = 2
        }
    }

    func testDetachAndNoGrad() throws {
        try withTorchErrors {
            let x = t64([1, 2]).requiringGrad()
            let d = x.detached()
            XCTAssertFalse(d.requiresGrad)
            XCTAssertTrue((x * 2).requiresGrad)
            XCTAssertFalse((x * 2).isLeaf)
            let y = withNoGrad { x * 2 }
            XCTAssertFalse(y.requiresGrad)
            XCTAssertTrue(Torch.isGradEnabled)
            withNoGrad {
                XCTAssertFalse(Torch.isGradEnabled)
                withGrad { XCTAssertTrue(Torch.isGradEnabled) }
                XCTAssertFalse(Torch.isGradEnabled)
            }
            XCTAssertTrue(Torch.isGradEnabled)
            // The mode is restored even when the body throws.
            struct Boom: Error {}
            XCTAssertThrowsError(try withNoGrad { throw Boom() })
            XCTAssertTrue(Torch.isGradEnabled)
            // Gradient flows through x but not through the detached copy.
            (x * d).sum().backward()
            assertClose(x.grad!, [1, 2])
        }
    }

    func testFunctionalGrad() throws {
        try withTorchErrors {
            let x = t64([1, 2]).requiringGrad()
            let unused = t64([5]).requiringGrad()
            let y = (x * x * x).sum()
            let g = Torch.grad(outputs: [y], inputs: [x, unused], createGraph: true, allowUnused: true)
            assertClose(g[0]!, [3, 12])
            XCTAssertNil(g[1])
            XCTAssertNil(x.grad)  // functional: .grad untouched
            // Second derivative through create_graph: d/dx Σ 3x² = 6x.
            let h = Torch.grad(outputs: [g[0]!.sum()], inputs: [x])
            assertClose(h[0]!, [6, 12])
            // With explicit output gradients.
            let z = x * 2
            let gz = Torch.grad(outputs: [z], inputs: [x], gradOutputs: [t64([1, 3])])
            assertClose(gz[0]!, [2, 6])
        }
        let msg = expectTorchError {
            let x = t64([1]).requiringGrad()
            _ = Torch.grad(outputs: [x * 2], inputs: [x], gradOutputs: [])
        }
        XCTAssertEqual(msg, "grad: 1 outputs but 0 gradOutputs")
    }
}
