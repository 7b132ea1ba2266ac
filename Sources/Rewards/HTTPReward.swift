import Foundation
import HTTP

/// A reward served over HTTP: `{type: http, url: "http://host:port/path", timeout: 30}` POSTs each
/// response as `{"prompt", "response", "answer"}` and reads `{"reward": number, "components": {…}}`
/// from a 200 reply, as `CommandReward` reads a command's lines. A refused connection, a late reply,
/// another status, or a body without a finite `reward` is an error naming the URL.
public struct HTTPReward: RewardFunction {
    public let url: String
    public let timeout: Double
    /// Whether replies carry step rewards (`steps: 1`).
    public let givesStepRewards: Bool
    let host: String, port: Int, path: String
    public var name: String { "http" }

    public init(url: String, timeout: Double = 30, steps: Bool = false) throws {
        guard let u = URLComponents(string: url), u.scheme == "http", let host = u.host, !host.isEmpty else {
            throw RewardError("reward term ('http'): 'url' must be http://host:port/path, got '\(url)' (https needs a TLS-terminating proxy)")
        }
        guard timeout > 0, timeout <= 3600 else { throw RewardError("reward term ('http'): 'timeout' must be in (0, 3600] seconds, got \(timeout)") }
        self.url = url
        self.timeout = timeout
        givesStepRewards = steps
        (self.host, port, path) = (host, u.port ?? 80, u.path.isEmpty ? "/" : u.path + (u.query.map { "?" + $0 } ?? ""))
    }

    public func checkedScore(_ input: RewardInput) throws -> RewardScore {
        let reply: HTTPReply
        do {
            let body: [String: Any] = ["prompt": input.prompt, "response": input.response, "answer": input.answer ?? NSNull()]
            reply = try http(port, "POST", path, json: body, host: host, timeout: timeout)
        } catch {
            throw RewardError("reward \(url): \(error)")
        }
        guard reply.status == 200 else { throw RewardError("reward \(url): HTTP \(reply.status): \(reply.text.prefix(200))") }
        guard let json = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any] else {
            throw RewardError("reward \(url): the reply is not a JSON object: \(reply.text.prefix(200))")
        }
        return try RewardReply.parse(json, from: "reward \(url)", steps: givesStepRewards)
    }

    /// Without a way to throw, a failed request scores NaN (training and eval call `checkedScore`).
    public func score(_ input: RewardInput) -> RewardScore { (try? checkedScore(input)) ?? RewardScore(value: .nan) }
}

/// The reply an external reward gives: a finite `reward`, optional numeric `components` and, from a
/// reward declared with `steps: 1`, `steps`: `[{"offset": UTF-8 bytes into the response, "reward": r}]`.
enum RewardReply {
    static func parse(_ reply: [String: Any], from label: String, steps wanted: Bool = false) throws -> RewardScore {
        guard let r = (reply["reward"] as? NSNumber)?.doubleValue, r.isFinite else {
            throw RewardError("\(label): the reply's 'reward' must be a finite number, got \(reply["reward"].map { "\($0)" } ?? "nothing")")
        }
        var components = [String: Double]()
        if let c = reply["components"] {
            guard let map = c as? [String: Any] else { throw RewardError("\(label): the reply's 'components' must be an object of numbers") }
            for (k, v) in map {
                guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else { throw RewardError("\(label): component '\(k)' must be a finite number") }
                components[k] = x
            }
        }
        var steps = [StepScore]()
        if wanted {
            guard let list = reply["steps"] as? [Any] else { throw RewardError("\(label): the reply needs 'steps' (a list of {offset, reward}): the term gives step rewards") }
            for (i, item) in list.enumerated() {
                guard let s = item as? [String: Any], let o = (s["offset"] as? NSNumber)?.intValue, o >= 0,
                      let v = (s["reward"] as? NSNumber)?.doubleValue, v.isFinite else {
                    throw RewardError("\(label): steps[\(i)] must be {\"offset\": a byte offset ≥ 0, \"reward\": a finite number}")
                }
                steps.append(StepScore(offset: o, reward: v))
            }
        } else if reply["steps"] != nil {
            throw RewardError("\(label): the reply has 'steps', but the reward term does not say it gives them (add steps: 1)")
        }
        return RewardScore(value: r, components: components, steps: steps.sorted { $0.offset < $1.offset })
    }
}
