import Foundation
import Hummingbird
import Models
import NIOCore
import Rollout

/// `tokenwise serve`: an OpenAI-compatible HTTP server (Hummingbird) on the batch engine —
/// `/health`, `/v1/models`, `/v1/completions` and `/v1/chat/completions`, whole or streamed as
/// server-sent events. Every request's choices join the engine's running batch; bad requests get
/// a 4xx with a JSON error and never reach the engine.
public final class OpenAIServer: @unchecked Sendable {
    public let config: ServeConfig
    public let engine: BatchEngine
    let tokenizer: Tokenizer
    let template: ChatTemplate?
    let lock = NSLock()
    var inFlight = 0
    /// The loaded LoRA adapter's name (requests must name it while it is loaded).
    var adapter: String?
    /// Where the loaded adapter was read from (SGLang's `loaded_adapters` reports it).
    var adapterPath: String?
    var currentAdapter: String? {
        get { lock.lock(); defer { lock.unlock() }; return adapter }
        set { lock.lock(); adapter = newValue; lock.unlock() }
    }

    public init(engine: BatchEngine, template: ChatTemplate?, config: ServeConfig) throws {
        try config.validate()
        let held = engine.sampler.weights?.precision ?? .fp32
        guard held == config.weights else { throw APIError(500, "the engine decodes with \(held.rawValue) weights, the config says \(config.weights.rawValue)") }
        self.engine = engine
        self.tokenizer = engine.sampler.tokenizer
        self.template = template
        self.config = config
    }

    /// The model names requests may give: the base, or the loaded adapter alone.
    var served: [String] { lock.lock(); defer { lock.unlock() }; return [adapter ?? config.modelName] }

    /// Serves until cancelled; `ready` gets the bound port once the server listens.
    public func run(ready: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        engine.start()
        defer { engine.stop() }
        let app = Application(router: router(), configuration: .init(address: .hostname(config.host, port: config.port), serverName: "tokenwise"),
                              onServerRunning: { channel in ready(channel.localAddress?.port ?? 0) })
        try await app.run()
    }

    /// Serves on a background task (tests, benchmarks): returns the bound port once it listens,
    /// and a function that stops the server and its engine.
    public func startInBackground(timeout: Double = 30) throws -> (port: Int, stop: @Sendable () -> Void) {
        final class Port: @unchecked Sendable { var value = 0 }
        let ready = DispatchSemaphore(value: 0), port = Port()
        let task = Task { [self] in try? await run { port.value = $0; ready.signal() } }
        guard ready.wait(timeout: .now() + timeout) == .success else {
            task.cancel()
            throw APIError(500, "the server did not start listening within \(timeout) s")
        }
        return (port.value, { [engine] in task.cancel(); engine.stop() })
    }

    func router() -> Router<BasicRequestContext> {
        let r = Router()
        r.add(middleware: Guard(server: self))
        r.get("/health") { _, _ in Response(status: .ok) }
        r.get("/v1/models") { [self] _, _ in
            json(["object": "list", "data": served.map { ["id": $0, "object": "model", "created": 0, "owned_by": "tokenwise", "max_model_len": config.context] }])
        }
        r.post("/v1/completions") { [self] request, _ in try await generate(request, chat: false) }
        r.post("/v1/chat/completions") { [self] request, _ in try await generate(request, chat: true) }
        r.post("/v1/load_lora_adapter") { [self] request, _ in try loadAdapter(try await body(request)) }
        r.post("/v1/unload_lora_adapter") { [self] request, _ in try unloadAdapter(try await body(request)) }
        sglangRoutes(r)
        return r
    }

    func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: jsonData(object))))
    }

    static func error(_ e: APIError) -> Response {
        Response(status: .init(code: e.status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: e.body)))
    }

    /// Reserves room for `count` choices in flight, or refuses with 429.
    func reserve(_ count: Int) throws {
        lock.lock()
        defer { lock.unlock() }
        guard count <= config.maxInFlight else {
            throw APIError(400, "\(count) choices are more than may ever be in flight (\(config.maxInFlight)): split the request")
        }
        guard inFlight + count <= config.maxInFlight else {
            throw APIError(429, "\(inFlight) choices are in flight (at most \(config.maxInFlight)); retry later")
        }
        inFlight += count
    }

    func release(_ count: Int) { lock.lock(); inFlight -= count; lock.unlock() }

    /// Choices queued or decoding now.
    public var inFlightCount: Int { lock.lock(); defer { lock.unlock() }; return inFlight }

    /// The request's body, at most `maxBodyBytes` (else 413).
    func body(_ request: Request) async throws -> Data {
        var request = request
        do { return Data(buffer: try await request.collectBody(upTo: config.maxBodyBytes)) } catch {
            throw APIError(413, "the body is larger than \(config.maxBodyBytes) bytes")
        }
    }

    func generate(_ request: Request, chat: Bool) async throws -> Response {
        let data = try await body(request)
        let g = chat ? try GenerationRequest.chat(data, limits: config, tokenizer: tokenizer, template: template)
            : try GenerationRequest.completion(data, limits: config, tokenizer: tokenizer)
        let run = try start(g)
        let shape = ResponseJSON(id: (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.lowercased(), created: Int(Date().timeIntervalSince1970),
                                 model: g.model, chat: chat, tokenizer: tokenizer, request: g)
        if !g.stream { return json(shape.whole(try await whole(run))) }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                        body: ResponseBody { writer in
            do {
                try await run.stream(shape, to: &writer)
            } catch {
                run.cancel()   // the client went away: its rows leave the batch
                throw error
            }
        })
    }
}

extension OpenAIServer {
    /// Checks `g` against the limits, reserves room for its choices and submits them. The
    /// reservation ends with the returned `Running` (whenever it is released: done, failed, or dropped unsent).
    func start(_ g: GenerationRequest) throws -> Running {
        try g.check(limits: config, vocab: engine.sampler.model.config.vocabSize, served: served)
        let count = g.prompts.count * g.n
        try reserve(count)
        return try Running(g, engine: engine, onEnd: { [self] in release(count) })
    }

    /// Every choice of `run` once all are done: a cancelled request is a 499, a failed choice a 500.
    func whole(_ run: Running) async throws -> [Choice] {
        try await withTaskCancellationHandler { try await run.finish() } onCancel: { run.cancel() }
        guard run.choices.allSatisfy(\.done) else {
            run.cancel()
            throw APIError(499, "the request was cancelled")
        }
        if let failed = run.choices.first(where: { $0.failure != nil }) { throw APIError(500, "generation failed: \(failed.failure!)") }
        return run.choices
    }
}

/// API key and JSON errors for every route.
struct Guard: RouterMiddleware {
    typealias Context = BasicRequestContext
    let server: OpenAIServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let key = server.config.apiKey {
            let given = request.headers[.authorization] ?? ""
            guard Self.same(given, "Bearer " + key) else { return OpenAIServer.error(APIError(401, "missing or wrong API key (Authorization: Bearer KEY)")) }
        }
        do {
            return try await next(request, context)
        } catch let e as APIError {
            return OpenAIServer.error(e)
        } catch let e as HTTPError {
            return OpenAIServer.error(APIError(Int(e.status.code), e.body ?? e.status.reasonPhrase))
        } catch {
            return OpenAIServer.error(APIError(500, "\(error)"))
        }
    }

    /// Compares in time independent of where the strings differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = x.count ^ y.count
        for i in 0..<Swift.max(x.count, y.count) { diff |= Int((i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)) }
        return diff == 0
    }
}
