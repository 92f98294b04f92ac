import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// NVML's C ABI, resolved at run time with dlopen/dlsym: no build-time dependency on NVIDIA
/// headers or libraries, so emit builds and runs on machines without them.
/// Only getters are resolved; emit never sets anything on a GPU.
final class NVMLLibrary: @unchecked Sendable {
    typealias Return = Int32
    typealias DeviceHandle = OpaquePointer?

    static let success: Return = 0
    static let notSupported: Return = 3
    static let gpuIsLost: Return = 15

    private let handle: UnsafeMutableRawPointer
    let initialize: @convention(c) () -> Return
    let shutdown: @convention(c) () -> Return
    let errorString: @convention(c) (Return) -> UnsafePointer<CChar>?
    let deviceCount: @convention(c) (UnsafeMutablePointer<UInt32>) -> Return
    let handleByIndex: @convention(c) (UInt32, UnsafeMutablePointer<DeviceHandle>) -> Return
    let uuid: @convention(c) (DeviceHandle, UnsafeMutablePointer<CChar>, UInt32) -> Return
    let name: @convention(c) (DeviceHandle, UnsafeMutablePointer<CChar>, UInt32) -> Return
    let totalEnergy: @convention(c) (DeviceHandle, UnsafeMutablePointer<UInt64>) -> Return
    /// Optional: pre-Volta GPUs have no energy counter, only power (mW).
    let powerUsage: (@convention(c) (DeviceHandle, UnsafeMutablePointer<UInt32>) -> Return)?

    enum LoadError: Error, CustomStringConvertible {
        case notFound(String, String)
        case missingSymbol(String, String)

        var description: String {
            switch self {
            case let .notFound(path, detail): return "NVML library not found: \(path) (\(detail))"
            case let .missingSymbol(path, symbol): return "\(path) lacks the required symbol \(symbol)"
            }
        }
    }

    init(path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadError.notFound(path, dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        self.handle = handle
        func required<T>(_ symbol: String, as type: T.Type) throws -> T {
            guard let pointer = dlsym(handle, symbol) else {
                dlclose(handle)
                throw LoadError.missingSymbol(path, symbol)
            }
            return unsafeBitCast(pointer, to: type)
        }
        initialize = try required("nvmlInit_v2", as: (@convention(c) () -> Return).self)
        shutdown = try required("nvmlShutdown", as: (@convention(c) () -> Return).self)
        errorString = try required("nvmlErrorString", as: (@convention(c) (Return) -> UnsafePointer<CChar>?).self)
        deviceCount = try required("nvmlDeviceGetCount_v2", as: (@convention(c) (UnsafeMutablePointer<UInt32>) -> Return).self)
        handleByIndex = try required("nvmlDeviceGetHandleByIndex_v2", as: (@convention(c) (UInt32, UnsafeMutablePointer<DeviceHandle>) -> Return).self)
        uuid = try required("nvmlDeviceGetUUID", as: (@convention(c) (DeviceHandle, UnsafeMutablePointer<CChar>, UInt32) -> Return).self)
        name = try required("nvmlDeviceGetName", as: (@convention(c) (DeviceHandle, UnsafeMutablePointer<CChar>, UInt32) -> Return).self)
        totalEnergy = try required("nvmlDeviceGetTotalEnergyConsumption", as: (@convention(c) (DeviceHandle, UnsafeMutablePointer<UInt64>) -> Return).self)
        powerUsage = dlsym(handle, "nvmlDeviceGetPowerUsage").map {
            unsafeBitCast($0, to: (@convention(c) (DeviceHandle, UnsafeMutablePointer<UInt32>) -> Return).self)
        }
    }

    func message(_ code: Return) -> String {
        errorString(code).map { String(cString: $0) } ?? "NVML error \(code)"
    }

    /// Calls a string getter with a buffer of NVML's largest string size (96 bytes).
    func string(_ call: (UnsafeMutablePointer<CChar>, UInt32) -> Return) -> (code: Return, value: String?) {
        var buffer = [CChar](repeating: 0, count: 96)
        let code = buffer.withUnsafeMutableBufferPointer { storage -> Return in
            guard let base = storage.baseAddress else { return -1 }
            return call(base, UInt32(storage.count - 1))
        }
        guard code == NVMLLibrary.success else { return (code, nil) }
        return (code, String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    deinit { dlclose(handle) }
}
