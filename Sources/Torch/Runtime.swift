import CTorch

/// Process-wide libtorch settings and facts.
public enum Torch {
    /// The libtorch version Tokenwise is linked against ("2.11.0").
    public static var version: String { String(cString: tw_version()) }

    /// Intra-op threads libtorch uses for CPU kernels (default: all cores).
    public static var threads: Int {
        get { Int(tw_get_num_threads()) }
        set { tw_set_num_threads(Int32(Swift.max(1, newValue))) }
    }

    /// Keeps freed memory in the process for reuse instead of returning it to the system (glibc).
    /// Training allocates and frees the same large blocks every step; returning them costs page
    /// faults and zero-filling each time. The process keeps its peak heap until it exits.
    public static func retainFreedMemory() { tw_retain_freed_memory() }

    /// The process's peak resident memory so far in MB (Linux's VmHWM; 0 where /proc has none).
    public static var peakResidentMB: Double { processStatusMB("VmHWM:") }
    /// The process's resident memory now in MB (VmRSS).
    public static var residentMB: Double { processStatusMB("VmRSS:") }

    /// A memory line of /proc/self/status in MB (0 where there is none).
    static func processStatusMB(_ key: String) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        return statusMB(key, in: s)
    }

    /// The kB figure of `key`'s line in /proc status text, in MB. The kernel pads the figure with
    /// spaces after a tab, and not at all once it has 8 digits (10 GB and more).
    static func statusMB(_ key: String, in status: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let kb = Double(line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") else { return 0 }
        return kb / 1024
    }

    /// Seeds the global generator used when an op is given no `Generator`.
    public static func manualSeed(_ seed: UInt64) { tw_manual_seed(seed) }

    /// Whether a CUDA device can be used. The first call loads `libtorch_cuda.so`; on a machine
    /// without CUDA (or without the library) this returns false and never crashes.
    public static var cudaIsAvailable: Bool { tw_cuda_available(nil) != 0 }

    /// Why CUDA is unavailable (nil when it is available).
    public static var cudaUnavailableReason: String? {
        var reason: UnsafeMutablePointer<CChar>? = nil
        if tw_cuda_available(&reason) != 0 { return nil }
        guard let reason else { return "unknown" }
        defer { tw_error_free(reason) }
        return String(cString: reason)
    }

    public static var cudaDeviceCount: Int { Int(tw_cuda_device_count()) }

    /// Waits for queued CUDA work on `device` (for timing); a no-op on the CPU.
    public static func synchronize(_ device: Device) throws {
        guard case .cuda(let i) = device else { return }
        _ = try ffiThrowing("synchronizing \(device)") { tw_cuda_synchronize(Int32(i), $0) }
    }

    /// Whether autograd records ops on this thread.
    public static var isGradEnabled: Bool { tw_is_grad_enabled() != 0 }
}
