import Foundation
import Hummingbird
import Models

/// LoRA adapters loaded at run time (vLLM's `/v1/load_lora_adapter`, `/v1/unload_lora_adapter`):
/// one adapter at a time, on the engine's thread between two decode steps. While one is loaded
/// the server serves it under its name alone (rows of a batch share one set of weights; the base
/// model is refused with what would serve it), and a rollout copy is rebuilt with it merged.
extension OpenAIServer {
    func loadAdapter(_ data: Data) throws -> Response {
        let f = try RequestFields(data, known: ["lora_name", "lora_path", "load_inplace"])
        let (name, path) = try adapterFields(f)
        try load(name: name, path: path, inplace: try f.bool("load_inplace", false))
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "adapter '\(name)' loaded")))
    }

    func unloadAdapter(_ data: Data) throws -> Response {
        let f = try RequestFields(data, known: ["lora_name"])
        guard let name = try f.string("lora_name") else { throw APIError(400, "'lora_name' is required", param: "lora_name") }
        try unload(name: name)
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "adapter '\(name)' unloaded")))
    }

    func adapterFields(_ f: RequestFields) throws -> (name: String, path: String) {
        guard let name = try f.string("lora_name"), !name.isEmpty else { throw APIError(400, "'lora_name' is required", param: "lora_name") }
        guard let path = try f.string("lora_path"), !path.isEmpty else { throw APIError(400, "'lora_path' is required", param: "lora_path") }
        guard name != config.modelName else { throw APIError(400, "'lora_name' must differ from the base model's name '\(config.modelName)'", param: "lora_name") }
        return (name, path)
    }

    /// Loads the adapter at `path` as `name`: check, load and rename in one job on the engine's
    /// thread, so concurrent loads cannot interleave. `refuse` words the refusal when one is loaded.
    func load(name: String, path: String, inplace: Bool,
              refuse: @escaping (String) -> String = { "adapter '\($0)' is loaded: unload it first, or load '\($0)' again with load_inplace true" }) throws {
        let engine = self.engine
        try engine.perform { [self] in
            if let current = currentAdapter, !(inplace && current == name) { throw APIError(400, refuse(current)) }
            let model = engine.sampler.model, previous = model.lora
            do {
                try LoRA.load(from: URL(fileURLWithPath: path), into: model)
                try engine.sampler.weights?.refresh(from: model)
            } catch {
                model.lora = previous
                try? engine.sampler.weights?.refresh(from: model)
                throw APIError(400, "cannot load the adapter at \(path): \(error)", param: "lora_path")
            }
            currentAdapter = name
            adapterPath = path
        }
    }

    func unload(name: String, missing: @escaping (String) -> String = { "no adapter '\($0)' is loaded" }) throws {
        let engine = self.engine
        try engine.perform { [self] in
            guard currentAdapter == name else { throw APIError(404, missing(name), param: "lora_name") }
            engine.sampler.model.lora = nil
            try engine.sampler.weights?.refresh(from: engine.sampler.model)
            currentAdapter = nil
            adapterPath = nil
        }
    }
}
