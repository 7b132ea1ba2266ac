import XCTest
@testable import Torch

final class ViewsTests: XCTestCase {
    let x = { Tensor((0..<6).map(Double.init), shape: [2, 3]) }

    func testReshapeViewPermuteTranspose() {
        scoped {
            assertClose(x().reshaped([3, -1]), [0, 1, 2, 3, 4, 5], shape: [3, 2])
            assertClose(x().view([6]), [0, 1, 2, 3, 4, 5], shape: [6])
            assertClose(x().transposed(0, 1), [0, 3, 1, 4, 2, 5], shape: [3, 2])
            assertClose(x().permuted([1, 0]), [0, 3, 1, 4, 2, 5], shape: [3, 2])
            // reshape copies a non-contiguous tensor; view refuses (tested in ErrorTests).
            assertClose(x().transposed(0, 1).reshaped([6]), [0, 3, 1, 4, 2, 5])
            assertClose(x().flattened(), [0, 1, 2, 3, 4, 5], shape: [6])
        }
    }

    func testNarrowSliceSelect() {
        scoped {
            assertClose(x().narrowed(dim: 1, start: 1, length: 2), [1, 2, 4, 5], shape: [2, 2])
            assertClose(x().sliced(dim: 1, start: 0, step: 2), [0, 2, 3, 5], shape: [2, 2])
            assertClose(x().sliced(dim: 1, start: -2), [1, 2, 4, 5], shape: [2, 2])
            assertClose(x().select(dim: 1, index: 2), [2, 5], shape: [2])
            assertClose(x()[1], [3, 4, 5], shape: [3])
            assertClose(x()[-1], [3, 4, 5], shape: [3])
        }
    }

    func testViewsShareStorage() {
        scoped {
            let base = Tensor.zeros([2, 3])
            base.narrowed(dim: 1, start: 1, length: 1).copy(from: Tensor.ones([2, 1]))
            assertClose(base, [0, 1, 0, 0, 1, 0])
            base.select(dim: 0, index: 0).fill_(5)
            assertClose(base, [5, 5, 5, 0, 1, 0])
        }
    }

    func testSqueezeUnsqueezeExpand() {
        scoped {
            let t = Tensor([1, 2] as [Double], shape: [1, 2, 1])
            XCTAssertEqual(t.squeezed().shape, [2])
            XCTAssertEqual(t.squeezed(dim: 0).shape, [2, 1])
            XCTAssertEqual(t.squeezed(dim: 1).shape, [1, 2, 1])  // size 2: unchanged, as PyTorch
            XCTAssertEqual(t.unsqueezed(dim: -1).shape, [1, 2, 1, 1])
            let e = Tensor([1, 2] as [Double], shape: [2, 1]).expanded(to: [2, 3])
            assertClose(e, [1, 1, 1, 2, 2, 2], shape: [2, 3])
            XCTAssertEqual(e.strides, [1, 0])
            XCTAssertEqual(Tensor.ones([3]).expanded(to: [2, -1]).shape, [2, 3])
        }
    }

    func testCatStack() {
        scoped {
            let a = t64([1, 2], [1, 2]), b = t64([3, 4], [1, 2])
            assertClose(Tensor.cat([a, b], dim: 0), [1, 2, 3, 4], shape: [2, 2])
            assertClose(Tensor.cat([a, b], dim: 1), [1, 2, 3, 4], shape: [1, 4])
            assertClose(Tensor.stack([a, b], dim: 0), [1, 2, 3, 4], shape: [2, 1, 2])
            assertClose(Tensor.stack([a, b], dim: 2), [1, 3, 2, 4], shape: [1, 2, 2])
        }
    }

    func testGatherScatterIndexSelect() {
        scoped {
            let src = t64([10, 11, 12, 20, 21, 22], [2, 3])
            let idx = tIdx([2, 0, 1, 1], [2, 2])
            assertClose(src.gather(dim: 1, index: idx), [12, 10, 21, 21], shape: [2, 2])
            let z = Tensor.zeros([2, 3], dtype: .float64)
            let vals = t64([1, 2, 3, 4], [2, 2])
            assertClose(z.scattered(dim: 1, index: idx, source: vals), [2, 0, 1, 0, 4, 0])
            assertClose(z.scattered(dim: 1, index: idx, source: vals, add: true), [2, 0, 1, 0, 7, 0])
            assertClose(z, [0, 0, 0, 0, 0, 0])  // out of place
            assertClose(src.indexSelect(dim: 0, index: tIdx([1, 1, 0])), [20, 21, 22, 20, 21, 22, 10, 11, 12])
            assertClose(src.indexSelect(dim: 1, index: tIdx([2])), [12, 22], shape: [2, 1])
        }
    }

    func testMaskedFillWhereTriangles() {
        scoped {
            let m = Tensor([true, false, true])
            assertClose(t64([1, 2, 3]).maskedFill(m, value: -1), [-1, 2, -1])
            // Broadcast mask over rows.
            assertClose(x().maskedFill(Tensor([false, true, false]), value: 9), [0, 9, 2, 3, 9, 5])
            assertClose(Tensor.where(m, t64([1, 2, 3]), t64([7])), [1, 7, 3])
            let sq = Tensor.ones([3, 3], dtype: .float64)
            assertClose(sq.tril(), [1, 0, 0, 1, 1, 0, 1, 1, 1])
            assertClose(sq.triu(diagonal: 1), [0, 1, 1, 0, 0, 1, 0, 0, 0])
            assertClose(sq.tril(diagonal: -1), [0, 0, 0, 1, 0, 0, 1, 1, 0])
            XCTAssertEqual(try Tensor.causalMask(2).bools(), [true, false, true, true])
        }
    }
}
