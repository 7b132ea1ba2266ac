/// A bad model file, config or input; the message names the file and the field.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
