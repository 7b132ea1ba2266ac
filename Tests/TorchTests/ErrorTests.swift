import XCTest
@testable import Torch

/// Bad input gives a Swift error with a readable message, never a crash.
final class ErrorTests: XCTestCase {
    func testShapeMismatch() {
        let msg = expectTorchError { _ = Tensor.ones([2, 3]) + Tensor.ones([4]) }
        XCTAssertTrue(msg.contains("size of tensor a (3) must match the size of tensor b (4)"), msg)
        let mm = expectTorchError { _ = Tensor.ones([2, 3]).matmul(Tensor.ones([2, 3])) }
        XCTAssertTrue(mm.contains("cannot be multiplied") && mm.contains("2x3"), mm)
        let reshape = expectTorchError { _ = Tensor.ones([2, 3]).reshaped([4]) }
        XCTAssertTrue(reshape.contains("shape '[4]' is invalid for input of size 6"), reshape)
        let view = expectTorchError { _ = Tensor.ones([2, 3]).transposed(0, 1).view([6]) }
        XCTAssertTrue(view.contains("view size is not compatible"), view)
        let data = expectTorchError { _ = Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
        XCTAssertEqual(data, "shape [2, 2] holds 4 elements but 3 values were given")
        let rows = expectTorchError { _ = Tensor(rows: [[1, 2], [3]] as [[Float]]) }
        XCTAssertEqual(rows, "rows have different lengths: [2, 1]")
        let cat = expectTorchError { _ = Tensor.cat([Tensor.ones([2, 2]), Tensor.ones([3, 3])], dim: 0) }
        XCTAssertTrue(cat.contains("Sizes of tensors must match"), cat)
    }

    func testOutOfRangeIndex() {
        let sel = expectTorchError { _ = Tensor.ones([2, 3]).select(dim: 0, index: 5) }
        XCTAssertTrue(sel.contains("index 5 out of range for tensor of size [2, 3] at dimension 0"), sel)
        let dim = expectTorchError { _ = Tensor.ones([2, 3]).sum(dim: 4) }
        XCTAssertTrue(dim.contains("Dimension out of range"), dim)
        let emb = expectTorchError { _ = Tensor.embedding(Tensor.ones([3, 2]), tIdx([0, 7])) }
        XCTAssertTrue(emb.contains("index out of range"), emb)
        let gather = expectTorchError { _ = Tensor.ones([2, 2]).gather(dim: 1, index: tIdx([0, 2, 0, 0], [2, 2])) }
        XCTAssertTrue(gather.contains("out of bounds"), gather)
        let narrow = expectTorchError { _ = Tensor.ones([4]).narrowed(dim: 0, start: 3, length: 2) }
        XCTAssertTrue(narrow.contains("exceeds dimension size"), narrow)
    }

    func testBadDType() {
        let grad = expectTorchError { _ = tIdx([1, 2]).requiringGrad() }
        XCTAssertTrue(grad.contains("floating point"), grad)
        let emb = expectTorchError { _ = Tensor.embedding(Tensor.ones([3, 2]), t32([0, 1])) }
        XCTAssertTrue(emb.contains("Long") || emb.contains("Int"), emb)
        let gather = expectTorchError { _ = Tensor.ones([2]).gather(dim: 0, index: t32([0])) }
        XCTAssertTrue(gather.contains("int64"), gather)
        let mask = expectTorchError { _ = Tensor.ones([2]).maskedFill(t32([1, 0]), value: 0) }
        XCTAssertTrue(mask.contains("boolean masks"), mask)
        let mm = expectTorchError { _ = Tensor.ones([2, 2]).matmul(Tensor.ones([2, 2], dtype: .float64)) }
        XCTAssertTrue(mm.contains("dtype") || mm.contains("same"), mm)
    }

    /// Reading a dimension of the invalid tensor a failed op leaves trapped (index out of range);
    /// it is an error of the scope now, after the op's own.
    func testSizeOfAFailedResultIsAnErrorNotATrap() {
        XCTAssertThrowsError(try withTorchErrors { () -> Int in
            let bad = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
            return bad.size(0) + bad.size(-1)
        }) { XCTAssertTrue("\($0)".contains("mat1 and mat2 shapes cannot be multiplied"), "\($0)") }
        XCTAssertThrowsError(try withTorchErrors { Tensor.zeros([2]).size(3) }) {
            XCTAssertEqual("\($0)", "tensor of shape [2] has no dimension 3")
        }
    }

    func testFailureChainsSoftlyAndTheFirstErrorWins() {
        let msg = expectTorchError {
            let bad = Tensor.ones([2]) + Tensor.ones([3])
            XCTAssertFalse(bad.isValid)
            XCTAssertEqual(bad.shape, [])
            let worse = (bad * 2).exp().sum()
            XCTAssertFalse(worse.isValid)
            XCTAssertEqual(worse.description, "Tensor(invalid)")
        }
        XCTAssertTrue(msg.contains("must match"), msg)
    }

    func testNestedScopesReportToTheInnermost() throws {
        try withTorchErrors {
            let inner = expectTorchError { _ = Tensor.ones([2]).select(dim: 0, index: 9) }
            XCTAssertTrue(inner.contains("out of range"))
            _ = Tensor.ones([2]) + 1  // the outer scope has no error
        }
    }

    func testReadingValuesThrows() {
        XCTAssertThrowsError(try Tensor.ones([2]).item()) { e in
            XCTAssertEqual("\(e)", "item() needs a tensor with one element, got shape [2]")
        }
        // Reading an invalid tensor reports the error that made it invalid.
        XCTAssertThrowsError(try withTorchErrors { try (Tensor.ones([2]) + Tensor.ones([3])).floats() }) { e in
            XCTAssertTrue("\(e)".contains("must match the size"), "\(e)")
        }
        XCTAssertThrowsError(try withTorchErrors { try (Tensor.ones([2]) + Tensor.ones([3])).item() }) { e in
            XCTAssertTrue("\(e)".contains("must match the size"), "\(e)")
        }
    }

    func testBackwardOnANonScalarNeedsAGradient() {
        let msg = expectTorchError {
            let x = t64([1, 2]).requiringGrad()
            (x * 2).backward()
        }
        XCTAssertTrue(msg.contains("grad can be implicitly created only for scalar outputs"), msg)
        let noGraph = expectTorchError { t64([1]).backward() }
        XCTAssertTrue(noGraph.contains("does not require grad"), noGraph)
    }

    func testInPlaceOnALeafOutsideNoGrad() {
        let msg = expectTorchError {
            let p = t64([1]).requiringGrad()
            p.add_(1)
        }
        XCTAssertTrue(msg.contains("leaf Variable that requires grad"), msg)
    }

    func testRandomBadArguments() {
        let msg = expectTorchError { _ = Tensor([-1, 1] as [Float]).multinomial(numSamples: 1, generator: try Generator(seed: 1)) }
        XCTAssertTrue(msg.contains("probability"), msg)
        let tooMany = expectTorchError { _ = Tensor([0.5, 0.5] as [Float]).multinomial(numSamples: 3) }
        XCTAssertTrue(tooMany.contains("cannot sample"), tooMany)
    }
}
