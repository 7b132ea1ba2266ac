import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process speaking JSON lines on stdin/stdout: one request line, one reply line, each reply
/// within `timeout` seconds. A late reply, one that is not a JSON object or that carries an
/// `error`, and a process that exits are errors (built by `fail`) naming `label` and the request;
/// the process is stopped then and started again by the next request. Used by external reward
/// commands and by `ProcessEnvironment`.
public final class JSONLinesProcess {
    public let command: [String]
    public let timeout: Double
    /// How messages name the process, e.g. "reward `python3 verify.py`".
    public let label: String
    let fail: (String) -> Error
    /// The child's pid and our ends of its stdin and stdout (-1: not running).
    var pid: pid_t = 0, input: Int32 = -1, output: Int32 = -1
    /// Its exit status once reaped.
    var exited: Int32?
    var buffer = [UInt8](), replies = 0

    public init(command: [String], timeout: Double, label: String, error: @escaping (String) -> Error) {
        self.command = command; self.timeout = timeout; self.label = label; self.fail = error
    }

    deinit { stop() }

    /// Starts the command with posix_spawnp and two pipes (Foundation's Process is not used: its
    /// run-loop thread and signal handling do not belong in a training process).
    func start() throws {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw fail("\(label): cannot create pipes (errno \(errno))") }
        // Close-on-exec: no child inherits another environment's pipe ends (dup2 onto 0 and 1 clears it for its own).
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with no blocked signals and default handlers (this process ignores SIGPIPE and may block SIGTERM).
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for sig in [SIGPIPE, SIGTERM, SIGINT] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        for fd in toChild + fromChild { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = command.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, command[0], &actions, &attributes, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard rc == 0 else {
            close(toChild[1])
            close(fromChild[0])
            throw fail("\(label): cannot start \(command[0]) (\(String(cString: strerror(rc))))")
        }
        pid = child
        input = toChild[1]
        output = fromChild[0]
        exited = nil
        // A write to a process that has exited must be an error here, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Whether the child still runs (reaping it, and keeping its status, once it has exited).
    var running: Bool {
        guard pid > 0, exited == nil else { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
        return r == 0
    }

    /// Stops the process (it is started again by the next reset): closing its input ends a
    /// well-behaved one; then SIGTERM, then SIGKILL (which an inherited signal mask cannot block).
    public func stop() {
        if input >= 0 { close(input); input = -1 }
        if pid > 0 {
            for sig in [Int32(0), SIGTERM, SIGKILL] where running {
                if sig != 0 { kill(pid, sig) }
                let until = Date().addingTimeInterval(1)
                while running && Date() < until { usleep(5_000) }
            }
            pid = 0
        }
        if output >= 0 { close(output); output = -1 }
        buffer = []
    }

    public func request(_ object: [String: Any], what: String) throws -> [String: Any] {
        if pid == 0 { try start() }
        guard buffer.isEmpty else {
            let extra = String(decoding: buffer.prefix(200), as: UTF8.self)
            stop()
            throw fail("\(label): the process wrote more than one line for its last reply (extra: \(extra))")
        }
        var line = [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        line.append(10)
        var sent = 0
        while sent < line.count {
            let n = line[sent...].withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
            guard n > 0 else {
                let status = exitStatus()
                stop()
                throw fail("\(label): cannot send the \(what) request: the process \(status)")
            }
            sent += n
        }
        let reply = try readLine(what: what)
        replies += 1
        guard let json = try? JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any] else {
            stop()
            throw fail("\(label): reply \(replies) (to \(what)) is not a JSON object: \(reply.prefix(200))")
        }
        if let message = json["error"] as? String {
            stop()
            throw fail("\(label): \(what) failed: \(message)")
        }
        return json
    }

    func exitStatus() -> String {
        if running { return "closed its pipe but is still running" }
        guard let exited else { return "is not running" }
        return "exited with status \(exited)"
    }

    /// The next line of the process's output, waiting at most the timeout.
    func readLine(what: String) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            var fd = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = left > 0 ? poll(&fd, 1, Int32(Swift.min(left * 1000, 1e9))) : 0
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 {
                stop()
                throw fail("\(label): no reply to \(what) within \(timeout) s")
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(output, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                // The output closed: give the process a moment to exit, so its status can be reported.
                let grace = Date().addingTimeInterval(2)
                while running && Date() < grace { usleep(10_000) }
                let status = exitStatus()
                stop()
                throw fail("\(label): the process \(status) before replying to \(what)")
            }
            buffer += chunk[..<n]
            if buffer.count > 16 << 20 {
                stop()
                throw fail("\(label): a reply to \(what) is longer than 16 MiB without a newline")
            }
        }
    }
}
