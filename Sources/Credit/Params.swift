/// The first key (in sorted order) of the object `decoder` reads that is not one of `K`'s, with
/// `K`'s keys sorted: the check behind every "unknown key" error of the JSON and YAML configs.
public func firstUnknownKey<K: CodingKey & CaseIterable>(_ decoder: Decoder, _ keys: K.Type) throws -> (key: String, known: [String])? {
    let known = K.allCases.map(\.stringValue)
    let given = try decoder.container(keyedBy: ParamReader.Key.self).allKeys.map(\.stringValue)
    return given.sorted().first { !known.contains($0) }.map { ($0, known.sorted()) }
}

/// Reads a method's `params` object: every key must be known to the method, and every value of
/// the right type; errors name the method and the key. The same reader serves JSON and YAML.
public final class ParamReader {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let container: KeyedDecodingContainer<Key>?
    let method: String
    private var used: Set<String> = []

    init(_ container: KeyedDecodingContainer<Key>?, method: String) {
        self.container = container
        self.method = method
    }

    /// A reader over no params (every value takes its default).
    static func empty(method: String) -> ParamReader { ParamReader(nil, method: method) }

    func value<T: Decodable>(_ key: String, _ fallback: T) throws -> T {
        used.insert(key)
        guard let c = container, c.contains(Key(key)) else { return fallback }
        do {
            return try c.decode(T.self, forKey: Key(key))
        } catch let e as CreditError {
            throw e
        } catch {
            throw CreditError("method '\(method)': param '\(key)' must be \(Self.describe(T.self))")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ fallback: T) throws -> T where T.RawValue == String {
        let raw = try value(key, fallback.rawValue)
        guard let v = T(rawValue: raw) else {
            let allowed = T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw CreditError("method '\(method)': param '\(key)' is '\(raw)'; expected one of \(allowed)")
        }
        return v
    }

    /// Whether the params name `key`.
    func has(_ key: String) -> Bool { container?.contains(Key(key)) ?? false }

    /// Decodes a nested method configuration (D³S's `base`).
    func config(_ key: String, _ fallback: CreditConfig) throws -> CreditConfig {
        used.insert(key)
        guard let c = container, c.contains(Key(key)) else { return fallback }
        if let name = try? c.decode(String.self, forKey: Key(key)) {
            return try CreditConfig(method: name, reader: .empty(method: name))
        }
        return try c.decode(CreditConfig.self, forKey: Key(key))
    }

    /// Rejects keys the method did not read.
    func finish() throws {
        guard let c = container else { return }
        let unknown = c.allKeys.map(\.stringValue).filter { !used.contains($0) }.sorted()
        if let first = unknown.first {
            throw CreditError("unknown param '\(first)' for method '\(method)' (known: \(used.sorted().joined(separator: ", ")))")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type: "a number"
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is [[Int]].Type: "a list of lists of integers"
        case is [Int].Type: "a list of integers"
        case is [Any].Type: "a list"
        case is [String: Any].Type: "an object"
        default: "a \(type)"
        }
    }

    /// Checks a numeric param's range.
    func check(_ key: String, _ ok: Bool, _ expectation: String) throws {
        if !ok { throw CreditError("method '\(method)': param '\(key)' \(expectation)") }
    }
}
