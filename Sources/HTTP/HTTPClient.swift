import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over a socket (plain HTTP, IPv4): remote rollouts call an
/// inference server with it, and the server's tests and `bench serve` drive `tokenwise serve`
/// over real HTTP (and drop a connection mid-response).
public struct HTTPReply: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    /// The `data:` payloads of a server-sent-event body.
    public var events: [String] { text.components(separatedBy: "\n\n").compactMap { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : nil } }
}

public enum HTTPClientError: Error, CustomStringConvertible {
    case connect(String), io, parse, timeout

    public var description: String {
        switch self {
        case .connect(let why): "cannot connect: \(why)"
        case .io: "the connection broke"
        case .parse: "the reply is not HTTP"
        case .timeout: "no reply in time"
        }
    }
}

public final class Connection {
    public let fd: Int32

    /// Connects to `host` (a name or an IPv4 address) on `port`; reads wait at most `timeout` seconds.
    public init(host: String = "127.0.0.1", port: Int, timeout: Double = 60) throws {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let info = found else {
            throw HTTPClientError.connect("cannot resolve \(host)")
        }
        defer { freeaddrinfo(found) }
        fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw HTTPClientError.connect("no socket") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let why = String(cString: strerror(errno))
            // deinit closes the socket (the object is whole by now).
            throw HTTPClientError.connect("\(host):\(port): \(why)")
        }
    }

    deinit { close(fd) }

    public func send(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                guard n > 0 else { throw HTTPClientError.io }
                off += n
            }
        }
    }

    /// Reads until the server closes (or `limit` bytes); a read that times out throws.
    public func readAll(limit: Int = 64 << 20) throws -> Data {
        var out = Data(), buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw HTTPClientError.timeout }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    public static func request(_ method: String, _ path: String, body: Data?, headers: [String: String], host: String = "127.0.0.1") -> Data {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        return Data((head + "\r\n").utf8) + (body ?? Data())
    }
}

/// One request to 127.0.0.1:`port` (or `host`), read to the end.
public func http(_ port: Int, _ method: String, _ path: String, json: Any? = nil, raw: Data? = nil, headers: [String: String] = [:],
                 host: String = "127.0.0.1", timeout: Double = 60) throws -> HTTPReply {
    let body = try raw ?? json.map { try JSONSerialization.data(withJSONObject: $0) }
    let c = try Connection(host: host, port: port, timeout: timeout)
    try c.send(Connection.request(method, path, body: body, headers: headers, host: host))
    return try parse(try c.readAll())
}

func parse(_ data: Data) throws -> HTTPReply {
    let bytes = [UInt8](data)
    guard let end = (0..<Swift.max(0, bytes.count - 3)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }) else {
        throw HTTPClientError.parse
    }
    let head = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
    guard let status = head.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { throw HTTPClientError.parse }
    var headers = [String: String]()
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(bytes[(end + 4)...])
    if headers["transfer-encoding"]?.lowercased() == "chunked" {
        var out = [UInt8](), at = 0
        while let lineEnd = (at..<Swift.max(at, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
              let field = String(decoding: body[at..<lineEnd], as: UTF8.self).split(separator: ";").first,
              let size = Int(field, radix: 16), size > 0 {
            let start = lineEnd + 2
            guard start + size <= body.count else { break }
            out += body[start..<(start + size)]
            at = start + size + 2
        }
        body = out
    }
    return HTTPReply(status: status, headers: headers, body: Data(body))
}
