import CTorch
import Foundation

/// The Swift body of a checkpointed block, kept alive by the shim's autograd node until the graph
/// that may rerun it is freed.
private final class Block {
    let body: (Tensor) throws -> Tensor
    init(_ body: @escaping (Tensor) throws -> Tensor) { self.body = body }
}

extension Tensor {
    /// `body(input)` computed without keeping its activations: only `input` is saved, and the
    /// backward runs `body` again with autograd to differentiate it (gradient checkpointing).
    /// `reading` lists the tensors the body reads whose gradients are wanted (parameters); the body
    /// must be deterministic, since the backward differentiates its second run.
    public static func checkpoint(_ input: Tensor, reading params: [Tensor], _ body: @escaping (Tensor) throws -> Tensor) -> Tensor {
        let ctx = Unmanaged.passRetained(Block(body)).toOpaque()
        return withHandles([input] + params) { handles in
            Tensor.make { err in
                tw_checkpoint(handles[0], handles + 1, Int64(params.count), ctx, { ctx, x, err in
                    let block = Unmanaged<Block>.fromOpaque(ctx!).takeUnretainedValue()
                    do {
                        let y = try withTorchErrors { try block.body(Tensor(handle: x)) }
                        return withExtendedLifetime(y) { tw_alias(y.handle, err) }
                    } catch {
                        err?.pointee = strdup("\(error)")
                        return nil
                    }
                }, { ctx in Unmanaged<Block>.fromOpaque(ctx!).release() }, err)
            }
        }
    }
}
