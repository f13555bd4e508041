import WardenCore

/// Builds requests from text as users type them (`User::"alice"`, a JSON context).
public enum PolicyRequestParsing {
    public static func request(principal: String, action: String, resource: String, context: String)
        throws(WardenError) -> AuthorizationRequest
    {
        func uid(_ text: String, _ flag: String) throws(WardenError) -> EntityUID {
            do {
                return try EntityUID.parse(text)
            } catch {
                throw WardenError.invalidInput("--\(flag) \(text): \(error.message); write it as Type::\"id\"")
            }
        }
        let contextJSON: JSONValue
        do {
            contextJSON = try JSONValue.parse(context)
        } catch {
            throw WardenError.invalidInput("--context: invalid JSON at \(error)")
        }
        return AuthorizationRequest(
            principal: try uid(principal, "principal"), action: try uid(action, "action"),
            resource: try uid(resource, "resource"), context: try self.context(contextJSON, place: "--context"))
    }

    public static func context(_ json: JSONValue, place: String) throws(WardenError) -> [String: CedarValue] {
        guard case .object = json else { throw WardenError.invalidInput("\(place): the context must be a JSON object") }
        do {
            return try CedarJSON.record(json, place: place)
        } catch {
            throw WardenError.invalidInput(error.message)
        }
    }

    /// An entity reference given either as Cedar text (`User::"a"`) or as JSON `{"type", "id"}`.
    static func uid(_ json: JSONValue?, place: String) throws(WardenError) -> EntityUID {
        switch json {
        case .string(let text)?:
            do {
                return try EntityUID.parse(text)
            } catch {
                throw WardenError.invalidInput("\(place): \(text): \(error.message); write it as Type::\"id\"")
            }
        case .object?:
            do {
                return try CedarJSON.entityUID(json ?? .null, place: place)
            } catch {
                throw WardenError.invalidInput(error.message)
            }
        default:
            throw WardenError.invalidInput("\(place): missing; write it as \"Type::\\\"id\\\"\"")
        }
    }
}
