import Foundation
import XCTest
@testable import Models
import Torch
@testable import Training

/// SparsePO's activation masks (MaPO's recipe) recomputed row by row from the model's own maps:
/// the batched, padded computation gives the same masks, and the maps are what they claim to be.
final class ActivationMaskTests: XCTestCase {
    func testMasksFollowTheReferenceActivations() throws {
        let model = try Pretrained.tinyRandom(seed: 3).model
        let prompts = [[256, 10, 20, 30], [256, 40]], responses = [[50, 51, 52, 257], [60, 257]]
        let masks = try withTorchErrors { try ActivationMasks.compute(model, prompts: prompts, responses: responses).doubles() }
        XCTAssertEqual(masks.count, 2 * 4)
        for n in 0..<2 {
            let row = prompts[n] + responses[n]
            let ids = Tensor(row.map(Int64.init), shape: [1, row.count])
            let maps = try model.activationMaps(ids, attentionMask: Tensor.ones([1, row.count], dtype: .int64))
            // The residual group ends with the final hidden state; the logits group is the logits' mean.
            let hidden = try withTorchErrors { try withNoGrad { try model.hidden(ids).mean(dim: -1).doubles() } }
            let logits = try withTorchErrors { try withNoGrad { try model(ids).mean(dim: -1).doubles() } }
            assertClose(try maps[.residual]!.last!.doubles(), hidden, 1e-5)
            assertClose(try maps[.logits]![0].doubles(), logits, 1e-4)
            XCTAssertEqual(maps[.mlp]?.count, 2)
            XCTAssertEqual(maps[.attention]?.count, 2)
            XCTAssertEqual(maps[.residual]?.count, 1 + 2 * 2 + 1)
            // Response token j is predicted at position P + j − 1; min-max per map, mean per group, mean of groups.
            let positions = responses[n].indices.map { prompts[n].count + $0 - 1 }
            var groupMeans = [[Double]]()
            for group in CausalLM.ActivationProbe.Group.allCases {
                let rescaled = try maps[group]!.map { m -> [Double] in
                    let v = try m.doubles(), picked = positions.map { v[$0] }
                    let (lo, hi) = (picked.min()!, picked.max()!)
                    return picked.map { ($0 - lo) / (hi - lo) }
                }
                groupMeans.append(positions.indices.map { j in rescaled.map { $0[j] }.reduce(0, +) / Double(rescaled.count) })
            }
            let expected = positions.indices.map { j in groupMeans.map { $0[j] }.reduce(0, +) / Double(groupMeans.count) }
            assertClose(Array(masks[(n * 4)..<(n * 4 + responses[n].count)]), expected, 1e-5)
            XCTAssertTrue(expected.allSatisfy { (0...1).contains($0) })
        }
        XCTAssertEqual(Array(masks[6...]), [0, 0], "padding")
        // A one-token response has a flat map: the mask is 1 there (the official code would divide 0 by 0).
        let one = try withTorchErrors { try ActivationMasks.compute(model, prompts: [[256, 10]], responses: [[257]]).doubles() }
        XCTAssertEqual(one, [1])
    }

    func assertClose(_ a: [Double], _ b: [Double], _ tol: Double, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) where Swift.abs(x - y) > tol { XCTFail("\(a) vs \(b)", file: file, line: line); return }
    }
}
