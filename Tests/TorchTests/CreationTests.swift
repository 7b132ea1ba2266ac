import XCTest
@testable import Torch

final class CreationTests: XCTestCase {
    func testRoundTripEveryElementType() throws {
        try withTorchErrors {
            XCTAssertEqual(try Tensor([1.5, -2, 3] as [Float]).floats(), [1.5, -2, 3])
            XCTAssertEqual(try Tensor([1.25, -2e300] as [Double]).doubles(), [1.25, -2e300])
            XCTAssertEqual(try Tensor([Int64.max, -7] as [Int64]).int64s(), [Int64.max, -7])
            XCTAssertEqual(try Tensor([Int32.min, 5] as [Int32]).toArray(Int32.self), [Int32.min, 5])
            XCTAssertEqual(try Tensor([true, false, true]).bools(), [true, false, true])
            XCTAssertEqual(try Tensor([0, 255] as [UInt8]).toArray(UInt8.self), [0, 255])
            XCTAssertEqual(try Tensor([-128, 127] as [Int8]).toArray(Int8.self), [-128, 127])
        }
    }

    func testShapeStridesAndMetadata() throws {
        try withTorchErrors {
            let t = Tensor(Array(0..<24).map(Float.init), shape: [2, 3, 4])
            XCTAssertEqual(t.shape, [2, 3, 4])
            XCTAssertEqual(t.strides, [12, 4, 1])
            XCTAssertEqual(t.rank, 3)
            XCTAssertEqual(t.count, 24)
            XCTAssertEqual(t.size(-1), 4)
            XCTAssertEqual(t.dtype, .float32)
            XCTAssertEqual(t.device, .cpu)
            XCTAssertTrue(t.isContiguous)
            let tt = t.transposed(0, 2)
            XCTAssertEqual(tt.shape, [4, 3, 2])
            XCTAssertEqual(tt.strides, [1, 4, 12])
            XCTAssertFalse(tt.isContiguous)
            let c = tt.contiguous()
            XCTAssertTrue(c.isContiguous)
            XCTAssertEqual(c.strides, [6, 2, 1])
            XCTAssertEqual(try c.floats(), try tt.floats())
            XCTAssertEqual(try tt.floats()[0...3], [0, 12, 4, 16])
        }
    }

    func testRowsAndScalar() throws {
        try withTorchErrors {
            let m = Tensor(rows: [[1, 2], [3, 4]] as [[Double]])
            XCTAssertEqual(m.shape, [2, 2])
            XCTAssertEqual(try m.doubles(), [1, 2, 3, 4])
            let s = Tensor(scalar: 2.5)
            XCTAssertEqual(s.shape, [])
            XCTAssertEqual(try s.item(), 2.5)
        }
    }

    func testFactories() {
        scoped {
            assertClose(Tensor.zeros([2, 2]), [0, 0, 0, 0], shape: [2, 2])
            assertClose(Tensor.ones([3], dtype: .float64), [1, 1, 1], shape: [3])
            assertClose(Tensor.full([2], value: 7), [7, 7])
            assertClose(Tensor.arange(5), [0, 1, 2, 3, 4])
            XCTAssertEqual(Tensor.arange(5).dtype, .int64)
            assertClose(Tensor.arange(1, 2, step: 0.25, dtype: .float32), [1, 1.25, 1.5, 1.75])
            assertClose(Tensor.linspace(0, 1, steps: 5), [0, 0.25, 0.5, 0.75, 1])
            assertClose(Tensor.eye(2), [1, 0, 0, 1], shape: [2, 2])
            let z = Tensor.zeros(like: Tensor.ones([3, 1], dtype: .bfloat16))
            XCTAssertEqual(z.shape, [3, 1])
            XCTAssertEqual(z.dtype, .bfloat16)
        }
    }

    func testRandomIsReproducibleWithAnExplicitGenerator() throws {
        try withTorchErrors {
            let a = Tensor.randn([1000], generator: try Generator(seed: 42))
            let b = Tensor.randn([1000], generator: try Generator(seed: 42))
            let c = Tensor.randn([1000], generator: try Generator(seed: 43))
            XCTAssertEqual(try a.floats(), try b.floats())
            XCTAssertNotEqual(try a.floats(), try c.floats())
            // Moments of 1000 standard normals: mean within ~4 SE, variance near 1.
            XCTAssertLessThan(Swift.abs(try a.mean().item()), 0.13)
            XCTAssertEqual(try a.variance().item(), 1, accuracy: 0.15)

            let u = try Tensor.rand([1000], generator: Generator(seed: 1)).floats()
            XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
            XCTAssertEqual(Double(u.reduce(0, +)) / 1000, 0.5, accuracy: 0.05)

            let r = try Tensor.randint(low: 3, high: 6, [500], generator: Generator(seed: 2)).int64s()
            XCTAssertEqual(Set(r), [3, 4, 5])

            // The global generator is seedable too.
            Torch.manualSeed(7)
            let g1 = try Tensor.randn([5]).floats()
            Torch.manualSeed(7)
            XCTAssertEqual(try Tensor.randn([5]).floats(), g1)
        }
    }

    func testGeneratorStateRestoresTheStream() throws {
        try withTorchErrors {
            let g = try Generator(seed: 3)
            _ = Tensor.rand([10], generator: g)
            let state = try g.state()
            XCTAssertEqual(state.dtype, .uint8)
            let next = try Tensor.rand([10], generator: g).floats()
            try g.setState(state)
            XCTAssertEqual(try Tensor.rand([10], generator: g).floats(), next)
        }
    }

    func testDTypeConversionsRoundTrip() throws {
        try withTorchErrors {
            let x = Tensor([1, 2.5, -3.75, 1e-3] as [Float])
            for dt in [DType.float64, .float32] {
                XCTAssertEqual(try x.to(dtype: dt).to(dtype: .float32).floats(), [1, 2.5, -3.75, 1e-3])
            }
            // bfloat16 keeps 8 significant bits, float16 11: exactly representable values survive.
            XCTAssertEqual(try x.to(dtype: .bfloat16).floats()[0...2], [1, 2.5, -3.75])
            XCTAssertEqual(try Tensor([1.0 + 1.0 / 256] as [Float]).to(dtype: .bfloat16).floats(), [1])
            XCTAssertEqual(try Tensor([1.0 + 1.0 / 1024] as [Float]).to(dtype: .float16).floats(), [1.0 + 1.0 / 1024])
            XCTAssertEqual(try x.to(dtype: .int64).int64s(), [1, 2, -3, 0])
            XCTAssertEqual(try Tensor([0, 2, 0] as [Float]).to(dtype: .bool).bools(), [false, true, false])
            XCTAssertEqual(try Tensor([3, 4] as [Int64]).to(dtype: .float32).floats(), [3, 4])
            // Raw bytes as stored: bfloat16 1.0 is 0x3F80 (little-endian).
            XCTAssertEqual(try Tensor([1] as [Float]).to(dtype: .bfloat16).bytes(), [0x80, 0x3F])
            let back = try [UInt8]([0x80, 0x3F, 0x00, 0x40]).withUnsafeBytes {
                try Tensor(bytes: $0, dtype: .bfloat16, shape: [2]).floats()
            }
            XCTAssertEqual(back, [1, 2])
            // Reading converts to the requested Swift type.
            XCTAssertEqual(try Tensor([1, 2] as [Int64]).floats(), [1, 2])
        }
    }

    func testDeviceRoundTripAndParsing() throws {
        try withTorchErrors {
            let x = Tensor([1, 2] as [Float])
            XCTAssertEqual(x.to(.cpu).device, .cpu)
            XCTAssertEqual(try x.to(.cpu, dtype: .float64).doubles(), [1, 2])
        }
        XCTAssertEqual(try Device(parsing: "cpu"), .cpu)
        XCTAssertEqual(try Device(parsing: "cuda"), .cuda(0))
        XCTAssertEqual(try Device(parsing: "cuda:3"), .cuda(3))
        XCTAssertEqual(Device.cuda(1).description, "cuda:1")
        XCTAssertThrowsError(try Device(parsing: "tpu")) { error in
            XCTAssertEqual("\(error)", "unknown device 'tpu' (expected cpu, cuda or cuda:N)")
        }
        let encoded = try JSONEncoder().encode([Device.cuda(2)])
        XCTAssertEqual(String(decoding: encoded, as: UTF8.self), "[\"cuda:2\"]")
        XCTAssertEqual(try JSONDecoder().decode([Device].self, from: encoded), [.cuda(2)])
        XCTAssertEqual(DType(name: "bf16"), .bfloat16)
        XCTAssertNil(DType(name: "complex64"))
    }

    func testCudaUnavailableNeverCrashes() {
        // This machine has no GPU: the answer must be a clean false with a reason, every time.
        if ProcessInfo.processInfo.environment["TOKENWISE_GPU_TESTS"] == nil {
            XCTAssertFalse(Torch.cudaIsAvailable)
            XCTAssertFalse(Torch.cudaIsAvailable)
            XCTAssertNotNil(Torch.cudaUnavailableReason)
            XCTAssertEqual(Torch.cudaDeviceCount, 0)
            let msg = expectTorchError { _ = Tensor.zeros([2], device: .cuda(0)) }
            XCTAssertTrue(msg.contains("CUDA"), msg)
            XCTAssertThrowsError(try Generator(seed: 1, device: .cuda(0)))
        } else {
            XCTAssertTrue(Torch.cudaIsAvailable)
            scoped {
                let x = Tensor([1, 2, 3] as [Float]).to(.cuda(0))
                XCTAssertEqual(x.device, .cuda(0))
                assertClose((x * 2).to(.cpu), [2, 4, 6])
            }
        }
    }

    func testThreadCountControl() {
        let before = Torch.threads
        Torch.threads = 1
        XCTAssertEqual(Torch.threads, 1)
        Torch.threads = before
        XCTAssertEqual(Torch.threads, before)
        XCTAssertEqual(Torch.version, "2.11.0")
    }
}
