// libFuzzer target `import`: operator exports as `emit facility import` reads them (scripts/fuzz.sh
// import S): CSV, JSON Lines and Green Button (ESPI) XML, told apart by the first byte as a person
// would (`<` XML, `{` JSON Lines, else CSV). Built with EmitCampus/Import against EmitContract.
// Any file gives windows and problems or a thrown error, never a crash; every problem names
// its place; reading the same file twice gives the same answer.
import EmitContract
import Foundation

private let path = "/dev/shm/emit-fuzz-import-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImport(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Data(UnsafeRawBufferPointer(start: start, count: count))
    guard (try? bytes.write(to: URL(fileURLWithPath: path))) != nil else { fatalError("cannot write \(path)") }
    let first = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 && $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }
    func read() -> (windows: Int, problems: [String])? {
        var problems: [ImportProblem] = []
        var windows = ImportedWindows(describe: { "\(path):\($0)" })
        do {
            switch first {
            case UInt8(ascii: "<"): try GreenButtonImport.read(path: path, problems: &problems, into: &windows)
            case UInt8(ascii: "{"): try TabularImport.read(path: path, format: .jsonl, problems: &problems, into: &windows)
            default: try TabularImport.read(path: path, format: .csv, problems: &problems, into: &windows)
            }
        } catch {
            return nil
        }
        return (windows.count, problems.map(\.description))
    }
    let once = read(), twice = read()
    guard once?.windows == twice?.windows, once?.problems == twice?.problems else { fatalError("two reads of one file disagree") }
    return 0
}
