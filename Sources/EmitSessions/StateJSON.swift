import EmitContract

// The agent's state as compact JSON, member for member what the synthesized Codable conformances
// write (a test decodes these bytes with JSONDecoder and compares): a begin writes a mark of
// every device, the checkpoint every device's state, and through Codable that was most of the
// agent's CPU (BENCHMARKS.md, the node agent). A member added to these types goes here too.

extension DeviceTracker.Totals: JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        out.member("counterUnits", counterUnits)
        try out.member("unitsPerJoule", unitsPerJoule)
        out.member("counterObservedNanoseconds", counterObservedNanoseconds)
        out.member("counterSamples", counterSamples)
        out.member("counterAdvances", counterAdvances)
        out.member("wraps", wraps)
        out.member("resets", resets)
        try out.member("powerJoules", powerJoules)
        out.member("powerObservedNanoseconds", powerObservedNanoseconds)
        out.member("powerSamples", powerSamples)
        out.member("failures", failures)
        out.member("lastFailure", lastFailure)
        try out.member("counterQuantumJoules", counterQuantumJoules)
        try out.member("staleStepJoules", staleStepJoules)
        out.member("staleJumps", staleJumps)
        try out.member("powerQuantumWatts", powerQuantumWatts)
        out.endObject()
    }
}

extension DeviceMark: JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        try out.member("totals", totals)
        out.member("openedWithCounter", openedWithCounter)
        out.member("openedWithPower", openedWithPower)
        out.endObject()
    }
}

extension DeviceTracker.State: JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        try out.member("totals", totals)
        out.member("lastCounter", lastCounter)
        out.member("wrapRange", wrapRange)
        out.endObject()
    }
}

extension ContinuousSampler.Mark: JSONFragmentWriting {
    public func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        out.member("wallNanoseconds", wallNanoseconds)
        try out.member("devices", devices)
        out.endObject()
    }
}

extension ContinuousSampler.Checkpoint: JSONFragmentWriting {
    public func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        out.member("wallNanoseconds", wallNanoseconds)
        out.member("bootID", bootID)
        try out.member("devices", devices)
        out.endObject()
    }
}
