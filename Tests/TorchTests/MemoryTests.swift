import Foundation
import XCTest
@testable import Torch

final class MemoryTests: XCTestCase {
    /// Resident set size in bytes, from /proc/self/statm.
    func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = s.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Creating and dropping 100,000 tensors leaves resident memory flat.
    func testNoLeakOverManyTensors() throws {
        try withTorchErrors {
            let a = Tensor.ones([64])  // 256 bytes: 100k leaked copies would be 25+ MB, plus handles
            func churn(_ n: Int) {
                for i in 0..<n {
                    let t = (a * Double(i)).exp().sum(dim: 0, keepDim: true)
                    _ = t.shape
                }
            }
            churn(10_000)  // warm up allocator caches
            let before = residentBytes()
            churn(100_000)
            let after = residentBytes()
            XCTAssertLessThan(after - before, 8 << 20, "resident memory grew by \(after - before) bytes")
        }
    }

    /// The kernel pads a status figure after its tab and stops padding at 8 digits: a peak of 10 GB
    /// or more once read as 0.
    func testStatusFiguresOfEveryWidthAreRead() {
        let status = "Name:\ttokenwise\nVmHWM:\t15728640 kB\nVmRSS:\t    2048 kB\n"
        XCTAssertEqual(Torch.statusMB("VmHWM:", in: status), 15360)
        XCTAssertEqual(Torch.statusMB("VmRSS:", in: status), 2)
        XCTAssertEqual(Torch.statusMB("VmSwap:", in: status), 0)
        XCTAssertGreaterThan(Torch.peakResidentMB, 1)
    }
}
