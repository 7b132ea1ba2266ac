import Foundation
import Models
import Torch

/// Continuous batching over one preallocated KV cache, for a server: a request joins the running
/// batch at the next decode step (its prompt is prefilled into free rows of the cache), a finished
/// row leaves at once, and each row samples from its own generator seeded as `Sampler.sample`
/// seeds it, so a request gets the tokens it would get alone. Rows admitted together share cache
/// columns (left-padded); the columns other rows wrote stay masked for a row, and a full cache is
/// compacted (each row's real positions moved to the front). The model runs on the engine's own
/// thread only; requests and results cross threads through `submit` and each request's sink.
public final class BatchEngine: @unchecked Sendable {
    public struct Request: Sendable {
        public var prompt: [Int]
        public var config: SamplingConfig
        /// Which sample of the prompt this is, and which repeat of the same prompt within one call
        /// (the two numbers `Sampler.sample` seeds a row's generator with).
        public var sampleIndex: Int
        public var repeatIndex: Int
        /// The most likely tokens (with logprobs under the policy) reported at each position, up to 20.
        public var topLogprobs: Int
        public init(prompt: [Int], config: SamplingConfig, sampleIndex: Int = 0, repeatIndex: Int = 0, topLogprobs: Int = 0) {
            self.prompt = prompt; self.config = config; self.sampleIndex = sampleIndex; self.repeatIndex = repeatIndex
            self.topLogprobs = topLogprobs
        }
    }

    public enum Event: Sendable {
        /// A sampled token, its logprob under the policy, the text it completes (empty while a
        /// character's bytes are incomplete; the text after a stop string is never sent), and the
        /// most likely tokens there with their logprobs (`topLogprobs` of them).
        case token(id: Int, logprob: Double, text: String, top: [(id: Int, logprob: Double)])
        case finished(Completion)
        case failed(String)
    }
    public typealias Sink = @Sendable (Event) -> Void

    final class Live {
        let id: Int, request: Request, row: Sampler.Row, sink: Sink
        var position: Int
        var emitted = ""
        var top: [(id: Int, logprob: Double)] = []
        init(id: Int, request: Request, row: Sampler.Row, sink: @escaping Sink) {
            self.id = id; self.request = request; self.row = row; self.sink = sink; position = request.prompt.count
        }
    }

    public let sampler: Sampler
    /// Most rows decoded together, and most prompt + new tokens of one request.
    public let maxRows: Int, context: Int
    let cache: KVCache
    /// [maxRows, capacity], 1 where a row's own tokens are.
    let mask: Tensor
    var live: [Live] = []
    /// Next-token logits of the live rows, [live, V].
    var logits: Tensor?
    let lock = NSCondition()
    var pending: [(id: Int, request: Request, sink: Sink)] = []
    var cancelled = Set<Int>(), jobs: [(run: () -> Void, fail: () -> Void)] = []
    var nextId = 0, running = false, threads = 1
    var stopped: Bool = false
    /// The engine's thread while its loop runs (nil before `start` and after the loop returned).
    var thread: Thread?
    /// Live rows of each decode step so far (the latest 4096), and the steps run.
    var rowHistory: [Int] = []
    /// Compactions so far (the cache filled up).
    public internal(set) var compactions = 0

    /// `capacity` (default 2 × context) bounds the cache columns; it must hold one full request.
    public init(sampler: Sampler, maxRows: Int, context: Int, capacity: Int? = nil) throws {
        let m = sampler.model, cap = capacity ?? 2 * context
        guard maxRows >= 1, context >= 2, context <= m.config.maxPositionEmbeddings, cap >= context else {
            throw RolloutError("engine: need max rows ≥ 1 and 2 ≤ context (\(context)) ≤ the model's \(m.config.maxPositionEmbeddings) ≤ capacity (\(cap))")
        }
        self.sampler = sampler
        self.maxRows = maxRows
        self.context = context
        cache = KVCache(config: m.config, batch: maxRows, capacity: cap, dtype: m.dtype, device: m.device)
        mask = Tensor.zeros([maxRows, cap], dtype: .int64, device: m.device)
    }

    // MARK: the public side (any thread)

    /// Queues `request`; `sink` receives its tokens and then `.finished` (or `.failed`), on the
    /// engine's thread. Returns the request's id (for `cancel`). A bad request throws here.
    @discardableResult
    public func submit(_ request: Request, sink: @escaping Sink) throws -> Int {
        let p = request.prompt, c = request.config, vocab = sampler.model.config.vocabSize
        try c.validate()
        try sampler.checkWeights(c)
        guard !p.isEmpty else { throw RolloutError("the prompt is empty") }
        if let bad = p.first(where: { !(0..<vocab).contains($0) }) { throw RolloutError("token id \(bad) is outside the vocabulary (\(vocab))") }
        guard c.repetitionPenalty == 1 else { throw RolloutError("repetition_penalty is not supported by the batch engine (set it to 1)") }
        guard c.temperatureSchedule.name == .constant else { throw RolloutError("the batch engine samples at a constant temperature") }
        guard (0...20).contains(request.topLogprobs) else { throw RolloutError("top logprobs must be 0…20, got \(request.topLogprobs)") }
        guard p.count + c.maxNewTokens <= context else {
            throw RolloutError("the prompt (\(p.count) tokens) + max tokens (\(c.maxNewTokens)) exceeds the server's context (\(context))")
        }
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { throw RolloutError("the engine is stopped") }
        nextId += 1
        pending.append((nextId, request, sink))
        lock.signal()
        return nextId
    }

    /// Drops request `id` (a client that went away): it leaves the batch at the next step with no further events.
    public func cancel(_ id: Int) {
        lock.lock()
        cancelled.insert(id)
        lock.signal()
        lock.unlock()
    }

    /// Runs `job` on the engine's thread between two decode steps (e.g. loading adapters) and waits for it.
    public func perform<T>(_ job: @escaping () throws -> T) throws -> T {
        let done = NSCondition()
        var result: Result<T, Error>?
        func finish(_ r: Result<T, Error>) { done.lock(); result = r; done.signal(); done.unlock() }
        lock.lock()
        guard !stopped else { lock.unlock(); throw RolloutError("the engine is stopped") }
        jobs.append((run: { finish(Result { try job() }) }, fail: { finish(.failure(RolloutError("the engine stopped before the job ran"))) }))
        lock.signal()
        lock.unlock()
        done.lock()
        while result == nil { done.wait() }
        done.unlock()
        return try result!.get()
    }

    /// Live rows of each decode step so far (the latest 4096).
    public var rowsPerStep: [Int] { lock.lock(); defer { lock.unlock() }; return rowHistory }

    /// Starts the engine's thread (libtorch's intra-op threads as on the calling thread).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !running else { return }
        running = true
        threads = Torch.threads
        let t = Thread { [self] in loop() }
        t.stackSize = 16 << 20
        thread = t
        t.start()
    }

    /// Stops the thread after the current step and waits (up to a minute) until it has: no
    /// libtorch work of the engine's outlives this call. Queued and live requests fail with `why`.
    public func stop(_ why: String = "the server is shutting down") {
        lock.lock()
        stopped = true
        running = false
        let waiting = pending, queued = jobs
        pending = []
        jobs = []
        lock.broadcast()
        lock.unlock()
        for p in waiting { p.sink(.failed(why)) }
        for j in queued { j.fail() }
        lock.lock()
        let until = Date().addingTimeInterval(60)
        while let t = thread, t !== Thread.current, lock.wait(until: until) {}
        lock.unlock()
    }

    // MARK: the engine's thread

    func loop() {
        Torch.threads = threads
        while true {
            lock.lock()
            while running && pending.isEmpty && live.isEmpty && jobs.isEmpty && cancelled.isEmpty { lock.wait() }
            if !running {
                lock.unlock()
                for l in live { l.sink(.failed("the server is shutting down")) }
                live = []
                lock.lock()
                thread = nil
                lock.broadcast()
                lock.unlock()
                return
            }
            let work = jobs, gone = cancelled
            jobs = []
            cancelled = []
            pending.removeAll { gone.contains($0.id) }
            let room = maxRows - live.filter { !gone.contains($0.id) }.count
            let admit = Array(pending.prefix(Swift.max(0, room)))
            pending.removeFirst(admit.count)
            lock.unlock()
            for job in work { job.run() }
            do {
                try withTorchErrors {
                    try withNoGrad {
                        if !gone.isEmpty { leave(Set(live.indices.filter { gone.contains(live[$0].id) })) }
                        try model.using(sampler.weights) {
                            if !admit.isEmpty { try prefill(admit) }
                            if !live.isEmpty { try decode() }
                        }
                    }
                }
            } catch {
                // An engine error (out of memory, a kernel failure) fails the requests in flight, not the server.
                for l in live { l.sink(.failed("\(error)")) }
                lock.lock()
                let waiting = Set(pending.map(\.id))
                lock.unlock()
                // Admitted rows failed with the live ones; those put back in the queue wait on.
                for a in admit where !live.contains(where: { $0.id == a.id }) && !waiting.contains(a.id) { a.sink(.failed("\(error)")) }
                live = []
                logits = nil
                cache.setLength(0)
            }
        }
    }

    var model: CausalLM { sampler.model }
}
