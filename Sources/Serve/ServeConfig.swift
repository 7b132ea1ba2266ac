import Foundation
import Models

/// How `tokenwise serve` listens and what it admits.
public struct ServeConfig: Sendable {
    public var host = "127.0.0.1"
    /// 0: a free port (the server says which).
    public var port = 8000
    /// Checked on every request (`Authorization: Bearer KEY`); required off loopback.
    public var apiKey: String?
    /// The name requests give as `model` (besides a loaded adapter's).
    public var modelName = "tokenwise"
    /// Most prompt + new tokens of one request.
    public var context = 1024
    /// Rows decoded together, and most requests' choices in flight (queued or decoding).
    public var maxRows = 8
    public var maxInFlight = 1024
    /// Most choices (prompts × n) in one request, and the largest body.
    public var maxChoices = 512
    public var maxBodyBytes = 1 << 20
    /// The engine's decode weights (requests sample with them).
    public var weights: WeightPrecision = .fp32

    public init() {}

    public static func isLoopback(_ host: String) -> Bool { ["127.0.0.1", "localhost", "::1"].contains(host) }

    public func validate() throws {
        guard (0...65535).contains(port) else { throw APIError(400, "--port must be 0…65535, got \(port)") }
        if !Self.isLoopback(host) && (apiKey ?? "").isEmpty {
            throw APIError(400, "--host \(host) listens beyond this machine: give an --api-key (or TOKENWISE_API_KEY), checked on every request")
        }
        if let k = apiKey, k.isEmpty { throw APIError(400, "--api-key is empty") }
        guard context >= 2, maxRows >= 1, maxInFlight >= maxRows, maxChoices >= 1, maxBodyBytes >= 1024 else {
            throw APIError(400, "limits: need context ≥ 2, max rows ≥ 1, max in flight ≥ max rows, max choices ≥ 1, body ≥ 1 KB")
        }
    }
}
