import Credit

/// A bad objective configuration or input; the message names the key or field.
public struct ObjectiveError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Rejects keys of the decoder's object that `K` does not list, so a typo in a config is an error
/// instead of a silently ignored option.
func rejectUnknownKeys<K: CodingKey & CaseIterable>(_ decoder: Decoder, _ keys: K.Type, in context: String) throws {
    if let (bad, known) = try firstUnknownKey(decoder, keys) {
        throw ObjectiveError("\(context): unknown key '\(bad)' (known: \(known.joined(separator: ", ")))")
    }
}

extension KeyedDecodingContainer {
    /// Decodes a string-valued choice, naming the allowed values when it is not one of them.
    func choice<T: RawRepresentable & CaseIterable>(_ key: Key, in context: String) throws -> T? where T.RawValue == String {
        guard let raw = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = T(rawValue: raw) else {
            let allowed = T.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw ObjectiveError("\(context): '\(key.stringValue)' is '\(raw)'; expected one of \(allowed)")
        }
        return value
    }
}
