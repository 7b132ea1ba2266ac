import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over a loopback socket: the tests and `bench serve` drive
/// the server over real HTTP with it (and can drop a connection mid-response).
public struct HTTPReply: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    /// The `data:` payloads of a server-sent-event body.
    public var events: [String] { text.components(separatedBy: "\n\n").compactMap { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : nil } }
}

public enum HTTPClientError: Error { case connect, io, parse }

public final class Connection {
    public let fd: Int32

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError.connect }
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); throw HTTPClientError.connect }
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

    /// Reads until the server closes (or `limit` bytes).
    public func readAll(limit: Int = 64 << 20) -> Data {
        var out = Data(), buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    public static func request(_ method: String, _ path: String, body: Data?, headers: [String: String]) -> Data {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        return Data((head + "\r\n").utf8) + (body ?? Data())
    }
}

public func http(_ port: Int, _ method: String, _ path: String, json: Any? = nil, raw: Data? = nil, headers: [String: String] = [:]) throws -> HTTPReply {
    let body = try raw ?? json.map { try JSONSerialization.data(withJSONObject: $0) }
    let c = try Connection(port: port)
    try c.send(Connection.request(method, path, body: body, headers: headers))
    return try parse(c.readAll())
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
              let size = Int(String(decoding: body[at..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16), size > 0 {
            let start = lineEnd + 2
            guard start + size <= body.count else { break }
            out += body[start..<(start + size)]
            at = start + size + 2
        }
        body = out
    }
    return HTTPReply(status: status, headers: headers, body: Data(body))
}
