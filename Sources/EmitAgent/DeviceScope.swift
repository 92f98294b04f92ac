import EmitContract
import EmitMeters
import EmitSessions
import Foundation

/// Which of the node's devices a run is metered on.
///
/// `devices` (what `--devices` says) names GPUs by index or UUID and CPU packages by RAPL
/// package id (`package-1`, which includes that package's DRAM zone). Without it, the client's
/// `CUDA_VISIBLE_DEVICES` or `NVIDIA_VISIBLE_DEVICES` (indices or UUIDs, `all`, `none`) names
/// the GPUs. A class no token names is metered whole (a GPU job still runs on the node's CPUs);
/// node-level meters (IPMI, Redfish) are always in scope.
public enum DeviceScope {
    public typealias Request = DeviceScopeRequest

    public struct Resolved: Sendable, Equatable {
        public let keys: [String]
        public let notes: [String]
    }

    public static func resolve(_ request: Request, devices: [MeteredDevice]) throws(AgentError) -> Resolved {
        let field: String
        let tokens: [String]
        if let named = request.devices {
            field = "devices"
            tokens = named.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !tokens.isEmpty else { throw AgentError(status: 400, code: "bad_devices", field: field, message: "devices names no device") }
        } else if let visible = request.visibleDevices?.trimmingCharacters(in: .whitespaces), !visible.isEmpty, visible != "all" {
            field = "visible_devices"
            // "none" and "void" mean no GPU; an empty list likewise.
            tokens = ["none", "void", "NoDevFiles"].contains(visible) ? [] : visible.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if tokens.isEmpty { return resolve(gpus: [], packages: nil, devices: devices, notes: []) }
        } else {
            return Resolved(keys: devices.map(ContinuousSampler.key), notes: [])
        }
        let gpus = devices.filter { $0.device.deviceClass == .gpu }
        var chosenGPUs: [MeteredDevice] = [], packages: [String] = [], notes: [String] = []
        var anyGPUToken = false
        for token in tokens {
            if let index = Int(token) {
                anyGPUToken = true
                guard let gpu = gpus.first(where: { $0.device.index == index }) else {
                    throw AgentError(status: 400, code: "bad_devices", field: field, message: "\(field): no GPU with index \(index) on this node (\(gpus.compactMap(\.device.index).map(String.init).joined(separator: ", ")))")
                }
                chosenGPUs.append(gpu)
            } else if token.hasPrefix("GPU-") {
                anyGPUToken = true
                guard let gpu = gpus.first(where: { $0.device.id == token }) else {
                    throw AgentError(status: 400, code: "bad_devices", field: field, message: "\(field): no GPU \(token) on this node")
                }
                chosenGPUs.append(gpu)
            } else if token.hasPrefix("MIG-") {
                // A MIG instance has no energy counter of its own: its board is metered, and said so.
                anyGPUToken = true
                guard let parent = MIGParents.parent(of: token), let gpu = gpus.first(where: { $0.device.id == parent }) else {
                    throw AgentError(status: 400, code: "bad_devices", field: field,
                                     message: "\(field): MIG instance \(token) cannot be mapped to its GPU here; name the GPU by index or UUID")
                }
                chosenGPUs.append(gpu)
                notes.append("\(token) is a MIG instance: its whole GPU \(parent) is metered, shared with the board's other instances")
            } else if token.hasPrefix("package-"), Int(token.dropFirst("package-".count)) != nil {
                guard devices.contains(where: { $0.source == .rapl && ($0.device.id == token || $0.device.id.hasPrefix(token + "/")) }) else {
                    throw AgentError(status: 400, code: "bad_devices", field: field, message: "\(field): no RAPL \(token) on this node")
                }
                packages.append(token)
            } else {
                throw AgentError(status: 400, code: "bad_devices", field: field,
                                 message: "\(field): \"\(token)\" is not a GPU index, GPU- or MIG- UUID, or package-N")
            }
        }
        return resolve(gpus: anyGPUToken ? chosenGPUs : nil, packages: packages.isEmpty ? nil : packages, devices: devices, notes: notes)
    }

    /// `gpus` nil: every GPU; `packages` nil: every RAPL zone.
    private static func resolve(gpus: [MeteredDevice]?, packages: [String]?, devices: [MeteredDevice], notes: [String]) -> Resolved {
        var keys: [String] = []
        for device in devices {
            let inScope: Bool
            switch device.device.deviceClass {
            case .gpu: inScope = gpus.map { $0.contains(device) } ?? true
            default:
                if device.source == .rapl, let packages {
                    inScope = packages.contains { device.device.id == $0 || device.device.id.hasPrefix($0 + "/") }
                } else {
                    inScope = true
                }
            }
            if inScope, !keys.contains(ContinuousSampler.key(device)) { keys.append(ContinuousSampler.key(device)) }
        }
        return Resolved(keys: keys, notes: notes)
    }
}

/// MIG instance UUIDs to their parent GPU's UUID, from the output of `nvidia-smi -L` stored in
/// the file `EMIT_MIG_MAP` names (the agent's unit writes it at start):
/// `GPU 0: NVIDIA A100 (UUID: GPU-...)` then indented `MIG 1g.5gb Device 0: (UUID: MIG-...)`.
enum MIGParents {
    static func parent(of mig: String, listing: String? = nil) -> String? {
        guard let text = listing ?? ProcessInfo.processInfo.environment["EMIT_MIG_MAP"].flatMap({ try? String(contentsOfFile: $0, encoding: .utf8) }) else {
            return nil
        }
        var board: String?
        for line in text.split(whereSeparator: \.isNewline) {
            guard let start = line.range(of: "(UUID: ") else { continue }
            let uuid = line[start.upperBound...].prefix { $0 != ")" }
            if uuid.hasPrefix("GPU-") { board = String(uuid) } else if uuid == mig { return board }
        }
        return nil
    }
}
