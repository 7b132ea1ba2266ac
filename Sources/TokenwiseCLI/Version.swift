import Torch

let tokenwiseVersion = "0.1.0 (libtorch \(Torch.version))"
