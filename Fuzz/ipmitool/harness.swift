// libFuzzer target `ipmitool`: the parsers of `ipmitool dcmi power reading` (and FreeIPMI's
// layout) and of `ipmitool sdr` power rows. Any output parses or is refused; a reading that is
// integrated is never 0 W (BMCs answer 0 for "no reading").
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIPMITool(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    if let reading = try? DCMIPowerReading.parse(text), case let .power(watts, _) = reading.sample, !(watts > 0) {
        fatalError("a DCMI answer of \(watts) W was taken as power")
    }
    for row in SDRPowerRow.parse(text) { _ = row.sample }
    return 0
}
