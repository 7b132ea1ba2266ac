import CTorch
import Foundation

/// An error raised by libtorch (shape mismatch, bad index, bad dtype…) or by Tokenwise's tensor layer.
public struct TorchError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Tensor ops do not throw, so they can be chained and used as operators. An op that fails records
/// its error in the innermost `withTorchErrors` scope of the current thread and returns an invalid
/// tensor; every later op on an invalid tensor fails softly. The scope throws the first error when
/// it exits. Every CLI command and training step runs inside one.
///
/// An op that fails outside any scope is a programming error and stops the process with its message.
public func withTorchErrors<R>(_ body: () throws -> R) throws -> R {
    let scope = ErrorScope()
    let stack = ErrorScope.stack
    stack.scopes.append(scope)
    defer { stack.scopes.removeLast() }
    let result = try body()
    if let error = scope.first { throw error }
    return result
}

final class ErrorScope {
    var first: TorchError?

    final class Stack { var scopes: [ErrorScope] = [] }

    private static let key = "tokenwise.torch.error-scopes"

    /// The current thread's stack of scopes.
    static var stack: Stack {
        let dict = Thread.current.threadDictionary
        if let s = dict[key] as? Stack { return s }
        let s = Stack()
        dict[key] = s
        return s
    }

    static func record(_ message: String) {
        guard let scope = stack.scopes.last else {
            fatalError("Torch error outside withTorchErrors { }: \(message)")
        }
        if scope.first == nil { scope.first = TorchError(message) }
    }
}

typealias ErrorOut = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

/// Runs one shim call. Returns the call's result and the error message it reported, if any.
@inline(__always)
func ffi<R>(_ body: (ErrorOut) -> R) -> (R, String?) {
    var err: UnsafeMutablePointer<CChar>? = nil
    let r = body(&err)
    guard let e = err else { return (r, nil) }
    let message = String(cString: e)
    tw_error_free(e)
    return (r, message)
}

/// Runs one shim call whose failure throws (loading, I/O, conversion to Swift values).
@inline(__always)
func ffiThrowing<R>(_ context: String? = nil, _ body: (ErrorOut) -> R) throws -> R {
    let (r, message) = ffi(body)
    if let message { throw TorchError(context.map { "\($0): \(message)" } ?? message) }
    return r
}

/// Runs one shim call whose failure is recorded in the current `withTorchErrors` scope.
@inline(__always)
@discardableResult
func ffiRecording<R>(_ body: (ErrorOut) -> R) -> R {
    let (r, message) = ffi(body)
    if let message { ErrorScope.record(message) }
    return r
}

/// Readable text for file-system failures: Foundation's errors print as `Error Domain=NSCocoaErrorDomain
/// Code=640 … NSUnderlyingError=…`; the reason a user can act on is the POSIX one underneath.
public enum FileErrors {
    /// The POSIX reason ("No space left on device") if there is one, else Foundation's description.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let posix = posixCode(ns) { return String(cString: strerror(posix)) }
        return ns.domain == NSCocoaErrorDomain ? ns.localizedDescription : "\(error)"
    }

    /// The file a Foundation error is about, when it says.
    public static func path(_ error: Error) -> String? {
        let info = (error as NSError).userInfo
        return (info[NSFilePathErrorKey] as? String) ?? (info[NSURLErrorKey] as? URL)?.path
    }

    /// True when the error is ENOSPC or EDQUOT (a full disk or quota), however deep it is wrapped,
    /// or is one of ours whose message carries that reason.
    public static func isDiskFull(_ error: Error) -> Bool {
        if let code = posixCode(error as NSError) { return code == ENOSPC || code == EDQUOT }
        let text = "\(error)"
        return [ENOSPC, EDQUOT].contains { text.contains(String(cString: strerror($0))) }
    }

    static func posixCode(_ ns: NSError) -> Int32? {
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let under = ns.userInfo[NSUnderlyingErrorKey] as? NSError { return posixCode(under) }
        return nil
    }
}
