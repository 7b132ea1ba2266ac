import CTorch

/// Where a tensor lives.
public enum Device: Equatable, Hashable, Codable, CustomStringConvertible, Sendable {
    case cpu
    case cuda(Int = 0)

    var typeCode: Int32 {
        switch self {
        case .cpu: Int32(TW_CPU)
        case .cuda: Int32(TW_CUDA)
        }
    }

    var index: Int32 {
        switch self {
        case .cpu: -1
        case .cuda(let i): Int32(i)
        }
    }

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let i): "cuda:\(i)"
        }
    }

    /// Parses "cpu", "cuda" and "cuda:N".
    public init(parsing text: String) throws {
        let t = text.lowercased()
        if t == "cpu" { self = .cpu; return }
        if t == "cuda" || t == "gpu" { self = .cuda(0); return }
        if t.hasPrefix("cuda:"), let i = Int(t.dropFirst(5)), i >= 0 { self = .cuda(i); return }
        throw TorchError("unknown device '\(text)' (expected cpu, cuda or cuda:N)")
    }

    public init(from decoder: Decoder) throws {
        self = try Device(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
