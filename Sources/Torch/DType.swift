import CTorch

/// Element type of a tensor.
public enum DType: Int32, CaseIterable, Codable, CustomStringConvertible, Sendable {
    case float32, bfloat16, float16, int64, int32, bool, float64, uint8, int8

    var code: Int32 {
        switch self {
        case .float32: Int32(TW_FLOAT32)
        case .bfloat16: Int32(TW_BFLOAT16)
        case .float16: Int32(TW_FLOAT16)
        case .int64: Int32(TW_INT64)
        case .int32: Int32(TW_INT32)
        case .bool: Int32(TW_BOOL)
        case .float64: Int32(TW_FLOAT64)
        case .uint8: Int32(TW_UINT8)
        case .int8: Int32(TW_INT8)
        }
    }

    init?(code: Int32) {
        guard let d = DType.allCases.first(where: { $0.code == code }) else { return nil }
        self = d
    }

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .bfloat16, .float16: 2
        case .bool, .uint8, .int8: 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .bfloat16, .float16: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .bfloat16: "bfloat16"
        case .float16: "float16"
        case .int64: "int64"
        case .int32: "int32"
        case .bool: "bool"
        case .float64: "float64"
        case .uint8: "uint8"
        case .int8: "int8"
        }
    }

    /// Parses the names used in configs and on the command line ("float32", "bf16", "fp16", …).
    public init?(name: String) {
        switch name.lowercased() {
        case "float32", "fp32", "f32", "float": self = .float32
        case "bfloat16", "bf16": self = .bfloat16
        case "float16", "fp16", "f16", "half": self = .float16
        case "float64", "fp64", "f64", "double": self = .float64
        case "int64", "i64", "long": self = .int64
        case "int32", "i32", "int": self = .int32
        case "bool": self = .bool
        case "uint8", "u8": self = .uint8
        case "int8", "i8": self = .int8
        default: return nil
        }
    }
}

/// Swift types that map one-to-one onto a tensor element type.
public protocol TensorElement {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
