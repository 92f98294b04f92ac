import Foundation

/// SNMP v2c GET over UDP (the messages: SNMPMessage).
final class SNMPClient {
    typealias Failure = SNMPFailure

    private let socket: SocketConnection
    private let community: String
    private let timeout: Double
    private let retries: Int
    private var nextRequestID = Int32.random(in: 1..<Int32.max / 2)

    init(host: String, port: Int, community: String, timeout: Double = 1, retries: Int = 2) throws(Failure) {
        do { socket = try SocketConnection(host: host, port: port, kind: .udp, timeout: timeout) } catch {
            throw Failure(description: error.description)
        }
        self.community = community
        self.timeout = timeout
        self.retries = retries
    }

    /// Values for `oids`, in order. Retries on silence (UDP loses datagrams; agents drop bad
    /// communities without a word, which is why the error names the community as a suspect).
    func get(_ oids: [[UInt]]) throws(Failure) -> [SNMPValue] {
        nextRequestID = nextRequestID == Int32.max ? 1 : nextRequestID + 1
        let requestID = nextRequestID
        let message: [UInt8]
        do { message = try SNMPMessage.getRequest(requestID: requestID, community: community, oids: oids) } catch {
            throw Failure(description: "cannot encode the request: \(error)")
        }
        for _ in 0...retries {
            do { try socket.send(message) } catch { throw Failure(description: error.description) }
            let deadline = SocketConnection.now() + timeout
            while true {
                let datagram: [UInt8]?
                do { datagram = try socket.receiveDatagram(until: deadline) } catch { throw Failure(description: error.description) }
                guard let datagram else { break }
                // A late answer to an earlier request has another id: skip it.
                if let values = try SNMPMessage.response(datagram, requestID: requestID, count: oids.count) { return values }
            }
        }
        throw Failure(description: "no SNMP answer from \(socket.peer) after \(retries + 1) tries (wrong community, or the agent is down)")
    }
}

extension [UInt] {
    /// "1.3.6.1.2.1" → [1, 3, 6, 1, 2, 1].
    init?(dotted: String) {
        let parts = dotted.split(separator: ".").map { UInt($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        self = parts.compactMap { $0 }
    }
}
