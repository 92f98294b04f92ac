import ArgumentParser
import EmitOTLP
import EmitTransport
import Foundation

/// How delivery speaks to what it delivers to: `emit outbox flush` and `emit agent serve --to`.
struct DeliveryOptions: ParsableArguments {
    @Option(name: .customLong("protocol"), help: ArgumentHelp(
        "emit (JSON Lines to /v1/events, for emit receive) or otlp (OTLP/HTTP logs to /v1/logs, for an OpenTelemetry Collector).",
        valueName: "emit|otlp"))
    var deliveryProtocol: String?

    @Option(name: .customLong("otlp-encoding"), help: ArgumentHelp("OTLP bodies as protobuf (the default) or json.", valueName: "protobuf|json"))
    var otlpEncoding: String?

    @Option(name: .customLong("header"), help: ArgumentHelp(
        "An extra request header, e.g. X-Tenant=hall-2; repeatable. A value @FILE is read from FILE, so an API key stays off the command line.",
        valueName: "NAME=VALUE"))
    var headers: [String] = []

    @Flag(help: "Compress every request body with gzip (Content-Encoding: gzip).")
    var gzip = false

    /// Checked before anything is sent: every problem named with its flag. `metricsToo`: OTLP
    /// metrics are pushed as well, so --otlp-encoding means something without --protocol otlp.
    func resolved(metricsToo: Bool = false) throws -> (FlushOptions.DeliveryProtocol, OTLPEncoding, [(name: String, value: String)]) {
        let chosen = deliveryProtocol ?? "emit"
        guard let delivery = FlushOptions.DeliveryProtocol(rawValue: chosen) else {
            throw CommandFailure.usage("--protocol: \"\(chosen)\" is not emit or otlp")
        }
        let encodingName = otlpEncoding ?? "protobuf"
        guard let encoding = OTLPEncoding(rawValue: encodingName) else {
            throw CommandFailure.usage("--otlp-encoding: \"\(encodingName)\" is not protobuf or json")
        }
        if otlpEncoding != nil, delivery != .otlp, !metricsToo { throw CommandFailure.usage("--otlp-encoding is for --protocol otlp") }
        var pairs: [(name: String, value: String)] = []
        for header in headers {
            guard let equals = header.firstIndex(of: "="), equals != header.startIndex else {
                throw CommandFailure.usage("--header \"\(header)\": expected NAME=VALUE")
            }
            let name = String(header[..<equals])
            guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw CommandFailure.usage("--header: \"\(name)\" is not a header name")
            }
            var value = String(header[header.index(after: equals)...])
            if value.hasPrefix("@") { value = try TokenFile.read(String(value.dropFirst())) }
            guard !value.contains("\n"), !value.contains("\r") else { throw CommandFailure.usage("--header \(name): the value holds a line break") }
            pairs.append((name, value))
        }
        return (delivery, encoding, pairs)
    }
}
