import Foundation

/// An error answered as `{"error": {"message", "type", "param", "code"}}` with its HTTP status.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    public let param: String?
    public init(_ status: Int, _ message: String, param: String? = nil) { self.status = status; self.message = message; self.param = param }
    public var description: String { message }

    var type: String {
        switch status {
        case 401: "authentication_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 500...: "internal_error"
        default: "invalid_request_error"
        }
    }

    var body: Data {
        var e: [String: Any] = ["message": message, "type": type, "code": status]
        e["param"] = param ?? NSNull()
        return (try? JSONSerialization.data(withJSONObject: ["error": e], options: [.sortedKeys])) ?? Data()
    }
}

/// Any JSON value, decoded strictly (true is never the number 1; an integer keeps every digit).
indirect enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// The fields of a request body: unknown fields and wrong types are 400s naming the field.
struct RequestFields {
    let values: [String: JSONValue]

    init(_ data: Data, known: Set<String>) throws {
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: data) else { throw APIError(400, "the body is not valid JSON") }
        guard case .object(let o) = v else { throw APIError(400, "the body must be a JSON object, not \(v.kind)") }
        if let unknown = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError(400, "unknown field '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))", param: unknown)
        }
        values = o
    }

    init(object: [String: JSONValue]) { values = object }

    func wrong(_ key: String, _ expected: String) -> APIError {
        APIError(400, "'\(key)' must be \(expected), got \(values[key]?.kind ?? "nothing")", param: key)
    }

    /// The value, nil when absent or null.
    subscript(_ key: String) -> JSONValue? {
        guard let v = values[key], v != .null else { return nil }
        return v
    }

    func double(_ key: String, _ fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let v = self[key] else { return fallback }
        let d: Double
        switch v {
        case .number(let x): d = x
        case .integer(let i): d = Double(i)
        default: throw wrong(key, "a number in \(range.lowerBound)…\(range.upperBound)")
        }
        guard range.contains(d) else { throw wrong(key, "a number in \(range.lowerBound)…\(range.upperBound)") }
        return d
    }

    /// An integer value exactly (a float with a fraction, or outside Int64, is not one).
    static func integer(_ v: JSONValue) -> Int64? {
        switch v {
        case .integer(let i): return i
        case .number(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }

    func int(_ key: String, _ fallback: Int?, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = self[key] else { return fallback }
        guard let i = Self.integer(v), i >= Int64(range.lowerBound), i <= Int64(range.upperBound) else {
            throw wrong(key, "an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return Int(i)
    }

    func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let v = self[key] else { return fallback }
        guard case .bool(let b) = v else { throw wrong(key, "true or false") }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = self[key] else { return nil }
        guard case .string(let s) = v else { throw wrong(key, "a string") }
        return s
    }

    /// A string or a list of strings (`stop`).
    func strings(_ key: String) throws -> [String] {
        switch self[key] {
        case nil: return []
        case .string(let s)?: return [s]
        case .array(let a)?:
            return try a.map { v -> String in
                guard case .string(let s) = v else { throw wrong(key, "a string or a list of strings") }
                return s
            }
        default: throw wrong(key, "a string or a list of strings")
        }
    }

    /// A list of integers (token ids), nil when absent.
    static func ints(_ v: JSONValue) -> [Int]? {
        guard case .array(let a) = v else { return nil }
        var out = [Int]()
        for x in a {
            guard let i = integer(x) else { return nil }
            out.append(Int(i))
        }
        return out
    }

    func ints(_ key: String) throws -> [Int] {
        guard let v = self[key] else { return [] }
        guard let ids = Self.ints(v) else { throw wrong(key, "a list of integers") }
        return ids
    }
}
