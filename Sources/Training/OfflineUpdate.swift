import Foundation
import Torch

/// The end of a step of a trainer on fixed data (preference pairs, SFT examples), after its
/// backward passes: the ranks' gradients and metrics summed, clipping, the optimizer step, and the
/// step's learning rate and time.
enum OfflineUpdate {
    static func apply(_ optimizer: AdamW, dataParallel: DataParallel?, maxGradNorm: Double, _ metrics: [String: Double]) throws -> [String: Double] {
        var m = metrics
        if let dataParallel { m = try dataParallel.finishBackward(optimizer.parameters, metrics: m) }
        m["grad_norm"] = Torch.clipGradNorm(optimizer.parameters, maxNorm: maxGradNorm)
        optimizer.step()
        optimizer.zeroGrad()
        return m
    }

    static func timed(_ metrics: [String: Double], _ optimizer: AdamW, since start: UInt64) -> [String: Double] {
        var m = metrics
        m["lr"] = optimizer.learningRate
        m["step_seconds"] = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        m["train_seconds"] = m["step_seconds"]
        return m
    }
}
