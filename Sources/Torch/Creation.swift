import CTorch

/// A random-number generator with an explicit seed. Every sampler and initialiser in Tokenwise
/// takes one, so the same seed gives the same run. Its state can be saved and restored for resume.
public final class Generator {
    let handle: OpaquePointer
    public let device: Device

    public init(seed: UInt64, device: Device = .cpu) throws {
        handle = try ffiThrowing("creating a generator on \(device)") {
            tw_generator_new(seed, device.typeCode, device.index, $0)
        }!
        self.device = device
    }

    deinit { tw_generator_free(handle) }

    /// The generator's full state as a uint8 tensor.
    public func state() throws -> Tensor {
        try withExtendedLifetime(self) {
            Tensor(handle: try ffiThrowing("reading generator state") { tw_generator_get_state(handle, $0) })
        }
    }

    public func setState(_ state: Tensor) throws {
        try withExtendedLifetime((self, state)) {
            _ = try ffiThrowing("restoring generator state") { tw_generator_set_state(handle, state.handle, $0) }
        }
    }
}

extension Tensor {
    static func shapeArgs(_ shape: [Int]) -> [Int64] { shape.map(Int64.init) }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        let dims = shapeArgs(shape)
        return make { tw_full(dims, Int32(dims.count), value, dtype.code, device.typeCode, device.index, $0) }
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        full(shape, value: 0, dtype: dtype, device: device)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        full(shape, value: 1, dtype: dtype, device: device)
    }

    /// Zeros with the shape, dtype and device of `other`.
    public static func zeros(like other: Tensor) -> Tensor {
        zeros(other.shape, dtype: other.dtype, device: other.device)
    }

    /// 0, 1, … below end.
    /// Ones with the shape, dtype and device of `other`.
    public static func ones(like other: Tensor) -> Tensor {
        ones(other.shape, dtype: other.dtype, device: other.device)
    }

    public static func arange(_ end: Double, dtype: DType = .int64, device: Device = .cpu) -> Tensor {
        arange(0, end, dtype: dtype, device: device)
    }

    /// Values start, start+step, … below end.
    public static func arange(_ start: Double, _ end: Double, step: Double = 1,
                              dtype: DType = .int64, device: Device = .cpu) -> Tensor {
        make { tw_arange(start, end, step, dtype.code, device.typeCode, device.index, $0) }
    }

    public static func linspace(_ start: Double, _ end: Double, steps: Int,
                                dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        make { tw_linspace(start, end, Int64(steps), dtype.code, device.typeCode, device.index, $0) }
    }

    public static func eye(_ n: Int, dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        make { tw_eye(Int64(n), dtype.code, device.typeCode, device.index, $0) }
    }

    private static func random(_ kind: Int32, _ shape: [Int], low: Double = 0, high: Double = 0,
                               generator: Generator?, dtype: DType, device: Device) -> Tensor {
        let dims = shapeArgs(shape)
        return withExtendedLifetime(generator) {
            make {
                tw_random(kind, dims, Int32(dims.count), low, high, generator?.handle,
                          dtype.code, device.typeCode, device.index, $0)
            }
        }
    }

    /// Standard normal samples. Without a generator, the global one (`Torch.manualSeed`) is used.
    public static func randn(_ shape: [Int], generator: Generator? = nil,
                             dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        random(0, shape, generator: generator, dtype: dtype, device: device)
    }

    /// Uniform samples in [0, 1).
    public static func rand(_ shape: [Int], generator: Generator? = nil,
                            dtype: DType = .float32, device: Device = .cpu) -> Tensor {
        random(1, shape, generator: generator, dtype: dtype, device: device)
    }

    /// Uniform integers in [low, high).
    public static func randint(low: Int = 0, high: Int, _ shape: [Int], generator: Generator? = nil,
                               dtype: DType = .int64, device: Device = .cpu) -> Tensor {
        random(2, shape, low: Double(low), high: Double(high), generator: generator, dtype: dtype, device: device)
    }

    /// Draws `numSamples` indices per row from the (unnormalised) probabilities in the last dim.
    public func multinomial(numSamples: Int, replacement: Bool = false, generator: Generator? = nil) -> Tensor {
        withExtendedLifetime(generator) {
            op { tw_multinomial($0, Int64(numSamples), replacement ? 1 : 0, generator?.handle, $1) }
        }
    }

    /// 1 with probability p (elementwise), else 0.
    public func bernoulli(generator: Generator? = nil) -> Tensor {
        withExtendedLifetime(generator) { op { tw_bernoulli($0, generator?.handle, $1) } }
    }
}
