import Foundation
import XCTest
@testable import Torch

/// Element-wise closeness of two arrays, with the first mismatch in the message.
func assertClose<T: BinaryFloatingPoint>(_ actual: [T], _ expected: [T], tol: Double = 1e-5,
                                         _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count differs \(message)", file: file, line: line)
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let ad = Double(a), ed = Double(e)
        if ad.isNaN && ed.isNaN { continue }
        if ad.isInfinite || ed.isInfinite {
            XCTAssertEqual(ad, ed, "element \(i) \(message)", file: file, line: line)
            continue
        }
        if Swift.abs(ad - ed) > tol * Swift.max(1, Swift.abs(ed)) {
            XCTFail("element \(i): \(ad) vs expected \(ed) (tol \(tol)) \(message)", file: file, line: line)
            return
        }
    }
}

func assertClose(_ t: Tensor, _ expected: [Double], shape: [Int]? = nil, tol: Double = 1e-5,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    do {
        if let shape { XCTAssertEqual(t.shape, shape, "shape \(message)", file: file, line: line) }
        assertClose(try t.doubles(), expected, tol: tol, message, file: file, line: line)
    } catch {
        XCTFail("reading tensor failed: \(error) \(message)", file: file, line: line)
    }
}

/// Runs `body` in an error scope and fails the test on any Torch error.
func scoped<R>(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> R) -> R? {
    do { return try withTorchErrors(body) } catch {
        XCTFail("unexpected error: \(error)", file: file, line: line)
        return nil
    }
}

/// Runs `body` in an error scope and returns the error it must raise.
func expectTorchError(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> String {
    do {
        try withTorchErrors(body)
        XCTFail("expected a TorchError", file: file, line: line)
        return ""
    } catch let e as TorchError {
        return e.message
    } catch {
        XCTFail("expected a TorchError, got \(error)", file: file, line: line)
        return ""
    }
}

func t64(_ values: [Double], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape) }
func t32(_ values: [Float], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape) }
func tIdx(_ values: [Int64], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape) }
