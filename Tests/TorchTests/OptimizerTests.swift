import Foundation
import XCTest
@testable import Torch

final class OptimizerTests: XCTestCase {
    // Least squares: loss(w) = mean((A·w − b)²), A: [4, 2].
    let A: [[Double]] = [[1, 2], [3, -1], [0.5, 0.5], [-2, 1]]
    let b: [Double] = [1, 0, 2, -1]

    func lossTensor(_ w: Tensor) -> Tensor {
        (Tensor(rows: A).matmul(w) - Tensor(b)).square().mean()
    }

    /// ∇ mean((Aw − b)²) = 2/n · Aᵀ(Aw − b), in plain Swift.
    func gradient(_ w: [Double]) -> [Double] {
        let r = A.indices.map { i in A[i][0] * w[0] + A[i][1] * w[1] - b[i] }
        return (0..<2).map { j in 2 / Double(A.count) * A.indices.map { A[$0][j] * r[$0] }.reduce(0, +) }
    }

    func testAdamWMatchesTheClosedFormForThreeSteps() throws {
        let lr = 0.1, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1
        // Closed form, in Double.
        var w = [0.5, -0.3], m = [0.0, 0.0], v = [0.0, 0.0]
        var expected = [[Double]]()
        for t in 1...3 {
            let g = gradient(w)
            for j in 0..<2 {
                w[j] *= 1 - lr * wd
                m[j] = b1 * m[j] + (1 - b1) * g[j]
                v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j]
                let mHat = m[j] / (1 - Foundation.pow(b1, Double(t)))
                let vHat = v[j] / (1 - Foundation.pow(b2, Double(t)))
                w[j] -= lr * mHat / (vHat.squareRoot() + eps)
            }
            expected.append(w)
        }
        for dtype in [DType.float64, .float32] {
            try withTorchErrors {
                let p = Tensor([0.5, -0.3] as [Double]).to(dtype: dtype).requiringGrad()
                let opt = try AdamW(parameters: [p], options: .init(lr: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: wd))
                for t in 0..<3 {
                    opt.zeroGrad()
                    lossTensor(p.to(dtype: .float64)).backward()
                    opt.step()
                    assertClose(try p.doubles(), expected[t], tol: dtype == .float64 ? 1e-12 : 1e-6, "step \(t + 1) \(dtype)")
                }
            }
        }
    }

    func testAdamWSkipsParametersWithoutGradientsAndHonoursGroups() throws {
        try withTorchErrors {
            let a = t64([1]).requiringGrad(), frozen = t64([1]).requiringGrad(), noDecay = t64([1]).requiringGrad()
            let opt = try AdamW(groups: [ParamGroup([a, frozen]), ParamGroup([noDecay], weightDecay: 0, lrScale: 2)],
                                options: .init(lr: 0.1, weightDecay: 0.5))
            (a * 0 + noDecay * 0).sum().backward()  // zero gradients for a and noDecay, none for frozen
            opt.step()
            assertClose(a, [1 - 0.1 * 0.5])   // decay only: m = v = 0
            assertClose(frozen, [1])          // no gradient: untouched
            assertClose(noDecay, [1])         // no decay in its group
            XCTAssertEqual(opt.parameters.count, 3)
        }
        XCTAssertThrowsError(try AdamW(parameters: [], options: .init(beta1: 1))) { e in
            XCTAssertEqual("\(e)", "AdamW betas must be in [0, 1), got (1.0, 0.999)")
        }
    }

    func testSGDMomentumAndNesterovByHand() throws {
        try withTorchErrors {
            // loss = 0.5·x²  ⇒ g = x.
            let x = t64([1]).requiringGrad()
            let opt = try SGD(parameters: [x], options: .init(lr: 0.1, momentum: 0.9))
            var expected = [Double]()
            var xv = 1.0, buf = 0.0
            for t in 0..<3 {
                let g = xv
                buf = t == 0 ? g : 0.9 * buf + g
                xv -= 0.1 * buf
                expected.append(xv)
            }
            for t in 0..<3 {
                opt.zeroGrad()
                (x * x * 0.5).sum().backward()
                opt.step()
                assertClose(x, [expected[t]], tol: 1e-12)
            }
            let y = t64([2]).requiringGrad()
            let nes = try SGD(parameters: [y], options: .init(lr: 0.1, momentum: 0.5, weightDecay: 0.1, nesterov: true))
            (y * y * 0.5).sum().backward()
            nes.step()
            // g = 2 + 0.1·2 = 2.2; buf = 2.2; g' = 2.2 + 0.5·2.2 = 3.3; y = 2 − 0.33
            assertClose(y, [1.67], tol: 1e-12)
        }
        XCTAssertThrowsError(try SGD(parameters: [], options: .init(nesterov: true))) { e in
            XCTAssertEqual("\(e)", "SGD nesterov needs momentum > 0 and dampening 0")
        }
    }

    func testClipGradNorm() throws {
        try withTorchErrors {
            let a = t64([0, 0]).requiringGrad(), b = t64([0]).requiringGrad()
            a.grad = t64([3, 4])
            b.grad = t64([12])
            let norm = Torch.clipGradNorm([a, b], maxNorm: 6.5)
            XCTAssertEqual(norm, 13, accuracy: 1e-9)
            let scale = 6.5 / (13 + 1e-6)
            assertClose(a.grad!, [3 * scale, 4 * scale], tol: 1e-12)
            assertClose(b.grad!, [12 * scale], tol: 1e-12)
            // Below the limit: unchanged.
            XCTAssertEqual(Torch.clipGradNorm([a, b], maxNorm: 100), 6.5, accuracy: 1e-5)
            assertClose(b.grad!, [12 * scale], tol: 1e-12)
            XCTAssertEqual(Torch.clipGradNorm([t64([1])], maxNorm: 1), 0)  // no gradients
        }
    }

    func testLRSchedules() throws {
        let cos = LRSchedule.cosine(warmupSteps: 2, totalSteps: 6, minLRRatio: 0.1)
        let got = (0..<8).map { cos.multiplier(step: $0) }
        assertClose(got, [0.5, 1, 1, 0.1 + 0.9 * 0.5 * (1 + Foundation.cos(Double.pi / 4)), 0.55,
                          0.1 + 0.9 * 0.5 * (1 + Foundation.cos(3 * Double.pi / 4)), 0.1, 0.1], tol: 1e-12)
        let lin = LRSchedule(kind: .linear, warmupSteps: 0, totalSteps: 4)
        assertClose((0..<5).map { lin.multiplier(step: $0) }, [1, 0.75, 0.5, 0.25, 0], tol: 1e-12)
        XCTAssertEqual(LRSchedule.constant.learningRate(base: 3e-4, step: 100), 3e-4)
        XCTAssertEqual(LRSchedule(kind: .constant, warmupSteps: 4).multiplier(step: 1), 0.5)

        let decoded = try JSONDecoder().decode(LRSchedule.self, from: Data(#"{"kind":"cosine","warmup_steps":2,"total_steps":6,"min_lr_ratio":0.1}"#.utf8))
        XCTAssertEqual(decoded, cos)
        XCTAssertThrowsError(try JSONDecoder().decode(LRSchedule.self, from: Data(#"{"kind":"cosine","warmup_steps":5,"total_steps":5}"#.utf8))) { e in
            XCTAssertEqual("\(e)", "lr schedule: total_steps (5) must exceed warmup_steps (5) for 'cosine'")
        }
        XCTAssertThrowsError(try LRSchedule(kind: .linear, totalSteps: 3, minLRRatio: 2).validate()) { e in
            XCTAssertEqual("\(e)", "lr schedule: min_lr_ratio must be in [0, 1], got 2.0")
        }
    }

    func testOptimizerStateSaveAndLoadResumesExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-opt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("optimizer.safetensors")
        try withTorchErrors {
            let p = t64([0.5, -0.3]).requiringGrad()
            let opt = try AdamW(parameters: [p], options: .init(lr: 0.05))
            func step(_ o: Optimizer, _ q: Tensor) {
                o.zeroGrad()
                lossTensor(q).backward()
                o.step()
            }
            step(opt, p); step(opt, p)
            try opt.save(to: file)
            let q = p.detached().clone().requiringGrad()
            let resumed = try AdamW(parameters: [q], options: .init(lr: 999))
            try resumed.load(from: file)
            XCTAssertEqual(resumed.learningRate, 0.05)
            step(opt, p); step(resumed, q)
            XCTAssertEqual(try p.doubles(), try q.doubles())

            // Mismatches are errors that name the file and the problem.
            let two = try AdamW(parameters: [t64([1]).requiringGrad(), t64([1]).requiringGrad()])
            XCTAssertThrowsError(try two.load(from: file)) { e in
                XCTAssertEqual("\(e)", "\(file.path): optimizer state holds 1 parameters but this optimizer has 2")
            }
            let wrongShape = try AdamW(parameters: [t64([1, 2, 3]).requiringGrad()])
            XCTAssertThrowsError(try wrongShape.load(from: file)) { e in
                XCTAssertEqual("\(e)", "\(file.path): optimizer state 'exp_avg.0' has shape [2] but parameter 0 has [3]")
            }
            let sgd = try SGD(parameters: [t64([1, 2]).requiringGrad()])
            XCTAssertThrowsError(try sgd.load(from: file)) { e in
                XCTAssertEqual("\(e)", "\(file.path): optimizer state is for 'adamw', not 'sgd'")
            }
            // SGD momentum buffers round-trip too.
            let s1 = t64([1, 2]).requiringGrad()
            let sgdA = try SGD(parameters: [s1], options: .init(lr: 0.1, momentum: 0.9))
            step(sgdA, s1)
            let sfile = dir.appendingPathComponent("sgd.safetensors")
            try sgdA.save(to: sfile)
            let s2 = s1.detached().clone().requiringGrad()
            let sgdB = try SGD(parameters: [s2])
            try sgdB.load(from: sfile)
            step(sgdA, s1); step(sgdB, s2)
            XCTAssertEqual(try s1.doubles(), try s2.doubles())
        }
    }
}
