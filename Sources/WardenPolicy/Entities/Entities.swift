import WardenCore

/// One entity: its attributes, tags and every ancestor (the transitive closure of its parents).
public struct Entity: Sendable {
    public var uid: EntityUID
    public var attributes: [String: CedarValue]
    public var parents: [EntityUID]
    public var tags: [String: CedarValue]
    /// Filled in by `Entities`: every entity reachable through `parents`.
    public internal(set) var ancestors: Set<EntityUID> = []

    public init(
        uid: EntityUID, attributes: [String: CedarValue] = [:], parents: [EntityUID] = [],
        tags: [String: CedarValue] = [:]
    ) {
        self.uid = uid
        self.attributes = attributes
        self.parents = parents
        self.tags = tags
    }
}

/// An entity store with the hierarchy closed transitively, so `in` is one set lookup.
public struct Entities: Sendable {
    public private(set) var byUID: [EntityUID: Entity]

    public init() { byUID = [:] }

    /// - Throws: `EntitiesError` when an entity appears twice.
    public init(_ entities: [Entity]) throws(EntitiesError) {
        var map: [EntityUID: Entity] = [:]
        map.reserveCapacity(entities.count)
        for entity in entities {
            if map[entity.uid] != nil { throw EntitiesError(message: "entity \(entity.uid) is defined twice") }
            map[entity.uid] = entity
        }
        // Close the hierarchy: depth-first with memoisation; cycles are tolerated (Cedar allows them).
        var closed: [EntityUID: Set<EntityUID>] = [:]
        func ancestors(of uid: EntityUID, visiting: inout Set<EntityUID>) -> Set<EntityUID> {
            if let done = closed[uid] { return done }
            guard let entity = map[uid] else { return [] }
            visiting.insert(uid)
            var result = Set(entity.parents)
            for parent in entity.parents where !visiting.contains(parent) {
                result.formUnion(ancestors(of: parent, visiting: &visiting))
            }
            visiting.remove(uid)
            closed[uid] = result
            return result
        }
        var closedMap = map
        for uid in map.keys {
            var visiting: Set<EntityUID> = []
            closedMap[uid]?.ancestors = ancestors(of: uid, visiting: &visiting)
        }
        byUID = closedMap
    }

    public subscript(uid: EntityUID) -> Entity? { byUID[uid] }

    public var count: Int { byUID.count }

    /// `a in b`: equal, or `b` is an ancestor of `a`.
    @inline(__always)
    func isDescendant(_ a: EntityUID, of b: EntityUID) -> Bool {
        a == b || (byUID[a]?.ancestors.contains(b) ?? false)
    }
}

public struct EntitiesError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension Entities {
    /// Reads Cedar's entity JSON: `[{"uid": {...}, "attrs": {...}, "parents": [...], "tags": {...}}]`.
    public init(json text: String, schema: SchemaTypes? = nil) throws(EntitiesError) {
        let document: JSONValue
        do {
            document = try JSONValue.parse(text)
        } catch {
            throw EntitiesError(message: "invalid JSON at \(error)")
        }
        try self.init(json: document, schema: schema)
    }

    /// - Parameter schema: when given, attribute JSON is read as the schema's types (schema-based parsing).
    public init(json document: JSONValue, schema: SchemaTypes? = nil) throws(EntitiesError) {
        guard case .array(let items) = document else {
            throw EntitiesError(message: "entities must be a JSON array of entity objects, found \(document.kindName)")
        }
        var entities: [Entity] = []
        entities.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let place = "entity #\(index + 1)"
            guard case .object(let members) = item else {
                throw EntitiesError(message: "\(place): expected an object with uid, attrs, parents")
            }
            for member in members where !["uid", "attrs", "parents", "tags"].contains(member.key) {
                throw EntitiesError(
                    message: "\(place): unknown field \"\(member.key)\" (expected uid, attrs, parents, tags)")
            }
            guard let uidJSON = item["uid"] else { throw EntitiesError(message: "\(place): missing \"uid\"") }
            let uid = try CedarJSON.entityUID(uidJSON, place: "\(place) uid")
            var attributes: [String: CedarValue] = [:]
            if let attrs = item["attrs"] {
                let types = schema?.attributeTypes(of: uid.type).map { SchemaTypes.AttributeType.record($0) }
                attributes = try CedarJSON.record(attrs, place: "\(uid) attrs", type: types, schema: schema)
            }
            var tags: [String: CedarValue] = [:]
            if let t = item["tags"] {
                var tagTypes: SchemaTypes.AttributeType?
                if let schema, let tagType = schema.tagType(of: uid.type), case .object(let members) = t {
                    tagTypes = .record(Dictionary(members.map { ($0.key, tagType) }, uniquingKeysWith: { a, _ in a }))
                }
                tags = try CedarJSON.record(t, place: "\(uid) tags", type: tagTypes, schema: schema)
            }
            var parents: [EntityUID] = []
            if let p = item["parents"] {
                guard case .array(let list) = p else {
                    throw EntitiesError(message: "\(uid) parents: expected an array of entity references")
                }
                parents = try list.map { (v) throws(EntitiesError) in
                    try CedarJSON.entityUID(v, place: "\(uid) parents")
                }
            }
            entities.append(Entity(uid: uid, attributes: attributes, parents: parents, tags: tags))
        }
        try self.init(entities)
    }
}

/// Cedar's JSON encoding of values (`__entity` and `__extn` escapes), without a schema.
enum CedarJSON {
    static func entityUID(_ json: JSONValue, place: String) throws(EntitiesError) -> EntityUID {
        var object = json
        if let inner = json["__entity"] { object = inner }
        guard case .object = object, let type = object["type"]?.stringValue, let id = object["id"]?.stringValue else {
            throw EntitiesError(message: "\(place): expected an entity reference {\"type\": \"T\", \"id\": \"i\"}")
        }
        guard isValidTypePath(type) else {
            throw EntitiesError(message: "\(place): \"\(type)\" is not a valid entity type (identifiers joined by ::)")
        }
        return EntityUID(type: type, id: id)
    }

    static func isValidTypePath(_ type: String) -> Bool {
        let reserved: Set<String> = ["true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"]
        let segments = splitOnDoubleColon(Substring(type))
        return segments.allSatisfy { segment in
            guard let first = segment.unicodeScalars.first, !reserved.contains(String(segment)) else { return false }
            let identifierStart = first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
            return identifierStart
                && segment.unicodeScalars.allSatisfy {
                    $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                }
        }
    }

    static func record(
        _ json: JSONValue, place: String, type: SchemaTypes.AttributeType? = nil, schema: SchemaTypes? = nil
    ) throws(EntitiesError) -> [String: CedarValue] {
        guard case .object(let members) = json else {
            throw EntitiesError(message: "\(place): expected an object, found \(json.kindName)")
        }
        var fields: [String: SchemaTypes.AttributeType] = [:]
        if let type, let schema, case .record(let f) = schema.resolve(type) { fields = f }
        var out: [String: CedarValue] = [:]
        for member in members {
            if out[member.key] != nil {
                throw EntitiesError(message: "\(place): duplicate key \"\(member.key)\"")
            }
            out[member.key] = try value(
                member.value, place: "\(place).\(member.key)", type: fields[member.key], schema: schema)
        }
        return out
    }

    static func value(
        _ json: JSONValue, place: String, type: SchemaTypes.AttributeType? = nil, schema: SchemaTypes? = nil
    ) throws(EntitiesError) -> CedarValue {
        // Schema-based parsing: the expected type decides how strings and {type, id} objects are read.
        if let type, let schema {
            switch (schema.resolve(type), json) {
            case (.entity, .object(let members)) where members.count == 2 && json["type"] != nil && json["id"] != nil:
                return .entity(try entityUID(json, place: place))
            case (.extensionType(let function), .string(let s)):
                do {
                    return try Evaluator.construct(function, .string(s))
                } catch {
                    throw EntitiesError(message: "\(place): \(error.message)")
                }
            case (.set(let element), .array(let items)):
                var set = Set<CedarValue>()
                for (i, item) in items.enumerated() {
                    set.insert(try value(item, place: "\(place)[\(i)]", type: element, schema: schema))
                }
                return .set(set)
            case (.record, .object(let members)) where !(members.count == 1 && members[0].key.hasPrefix("__")):
                return .record(try record(json, place: place, type: type, schema: schema))
            default: break
            }
        }
        switch json {
        case .null: throw EntitiesError(message: "\(place): null is not a Cedar value")
        case .bool(let b): return .bool(b)
        case .number(let text):
            guard let n = Int64(text) else {
                throw EntitiesError(message: "\(place): \(text) is not a 64-bit integer (Cedar has only integers)")
            }
            return .long(n)
        case .string(let s): return .string(s)
        case .array(let items):
            var set = Set<CedarValue>()
            for (i, item) in items.enumerated() { set.insert(try value(item, place: "\(place)[\(i)]")) }
            return .set(set)
        case .object(let members):
            if members.count == 1, members[0].key == "__entity" {
                return .entity(try entityUID(members[0].value, place: place))
            }
            if members.count == 1, members[0].key == "__extn" {
                let call = members[0].value
                guard let fn = call["fn"]?.stringValue, let function = ExtensionFunction(rawValue: fn) else {
                    throw EntitiesError(
                        message: "\(place): __extn needs \"fn\": an extension function such as ip or decimal")
                }
                var arguments: [CedarValue] = []
                if let arg = call["arg"] {
                    arguments = [try value(arg, place: place)]
                } else if case .array(let args)? = call["args"] {
                    for arg in args { arguments.append(try value(arg, place: place)) }
                }
                guard arguments.count == function.arity else {
                    throw EntitiesError(message: "\(place): \(fn) takes \(function.arity) argument(s) in __extn")
                }
                do {
                    return try Evaluator.call(function, arguments)
                } catch {
                    throw EntitiesError(message: "\(place): \(error.message)")
                }
            }
            if members.count == 1, members[0].key == "__expr" {
                throw EntitiesError(
                    message: "\(place): the __expr escape is no longer supported; use __entity or __extn")
            }
            return .record(try record(json, place: place))
        }
    }
}
