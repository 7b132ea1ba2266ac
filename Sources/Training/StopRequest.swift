import Foundation

/// A request to stop a run after the step in progress, set from a signal handler (another thread).
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var signal: Int32?

    public init() {}

    /// Records the first signal; later ones do not replace it.
    public func request(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if self.signal == nil { self.signal = signal }
    }

    public var requested: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return signal
    }

    static func name(_ signal: Int32) -> String { signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)" }
}

/// A run that stopped on request after a completed step (with its checkpoint, when configured).
public struct TrainingStopped: Error, CustomStringConvertible {
    public let signal: Int32
    public let description: String
}
