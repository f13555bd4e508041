import Foundation
import Testing
import WardenCore

@testable import WardenGateway

/// The door's small parsers and classifiers, on their own.
struct EgressUnitTests {
    func bytes(_ text: String) -> [UInt8] { IPLiteral.bytes(text) ?? [] }

    @Test func addressClasses() {
        #expect(AddressClass.of(bytes("93.184.216.34")) == .public)
        #expect(AddressClass.of(bytes("127.0.0.1")) == .loopback)
        #expect(AddressClass.of(bytes("10.1.2.3")) == .private)
        #expect(AddressClass.of(bytes("172.31.0.1")) == .private)
        #expect(AddressClass.of(bytes("100.64.0.1")) == .private)
        #expect(AddressClass.of(bytes("169.254.169.254")) == .metadata)
        #expect(AddressClass.of(bytes("169.254.1.1")) == .linkLocal)
        #expect(AddressClass.of(bytes("0.0.0.0")) == .unspecified)
        #expect(AddressClass.of(bytes("224.0.0.1")) == .multicast)
        #expect(AddressClass.of(bytes("::1")) == .loopback)
        #expect(AddressClass.of(bytes("::ffff:127.0.0.1")) == .loopback, "IPv4-mapped")
        #expect(AddressClass.of(bytes("64:ff9b::a01:203")) == .private, "NAT64 of 10.1.2.3")
        #expect(AddressClass.of(bytes("2002:a9fe:a9fe::1")) == .metadata, "6to4 of 169.254.169.254")
        #expect(AddressClass.of(bytes("fd00:ec2::254")) == .metadata)
        #expect(AddressClass.of(bytes("fe80::1")) == .linkLocal)
        #expect(AddressClass.of(bytes("2606:4700::1111")) == .public)
    }

    func query(_ name: String, type: UInt16) -> [UInt8] {
        var out: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { out += [UInt8(label.utf8.count)] + Array(label.utf8) }
        return out + [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    }

    @Test func dnsQueriesAndAnswers() throws {
        let q = try #require(DNSQuery(query("PyPI.org", type: 1)))
        #expect(q.name == "pypi.org" && q.type == 1 && q.tunnellingReason == nil)
        let answer = q.response(.noError, address: [127, 100, 0, 7])
        #expect(answer[0] == 0x12 && answer[1] == 0x34 && answer[3] & 0xF == 0)
        #expect(Array(answer.suffix(4)) == [127, 100, 0, 7])
        #expect(DNSQuery(Array(query("a.b", type: 1).prefix(14))) == nil, "truncated")
        let tunnel = try #require(DNSQuery(query("aGVsbG8gd29ybGQgdGhpcyBpcyBzZWNyZXQgZGF0YQ.evil.example", type: 1)))
        #expect(tunnel.tunnellingReason?.contains("high-entropy") == true)
        #expect(try #require(DNSQuery(query("storage.googleapis.com", type: 1))).tunnellingReason == nil)
        #expect(try #require(DNSQuery(query("d1abcdefgh1234.cloudfront.net", type: 1))).tunnellingReason == nil)
    }

    @Test func firstBytes() throws {
        #expect(
            FirstBytes.classify(Array("GET / HTTP/1.1\r\nHost: Mirror.test:80\r\n\r\n".utf8))
                == .http(method: "GET", target: "/", host: "mirror.test:80"))
        #expect(FirstBytes.classify(Array("GET / HTTP/1.1\r\nHo".utf8)) == .incomplete)
        #expect(FirstBytes.classify([0x16, 0x03]) == .incomplete)
        #expect(FirstBytes.classify([0x00, 0x01]) == .other)
        #expect(Fronting.check(.tls(sni: "a.test"), host: "a.test", port: 443) == nil)
        #expect(Fronting.check(.tls(sni: "b.test"), host: "a.test", port: 443) != nil)
        #expect(Fronting.check(.tls(sni: nil), host: "a.test", port: 443) != nil)
        #expect(Fronting.check(.http(method: "GET", target: "/", host: "a.test:81"), host: "a.test", port: 80) != nil)
        #expect(splitHostPort("[::1]:443")! == ("::1", 443))
        #expect(HTTPForwarder.absoluteTarget("http://Example.com:8080/a?b")! == ("example.com", 8080, "/a?b"))
        #expect(HTTPForwarder.absoluteTarget("http://user@example.com/") == nil, "userinfo is refused")
    }
}
