import Foundation

// The parts many methods share, defined once: which mount or repo a method acts on, and
// paging. A method's params embed them with `Flat`, so the JSON stays one flat object
// (`{"mountId": …, "bookmark": …, "limit": …}`) exactly as protocol.md shows it.

/// Which mount a method acts on: its id, or any path inside it (the CLI sends its
/// working directory). Neither: the method's default (every mount, or the daemon tree).
public struct MountSelector: Codable, Sendable, AllOptional {
    public var mountId: String?
    public var path: String?
    public init(mountId: String? = nil, path: String? = nil) {
        self.mountId = mountId
        self.path = path
    }
    public init() {}
}

/// Which repo a method acts on: a mount (as `MountSelector`), or an org/repo pair where
/// no mount is needed.
public struct RepoSelector: Codable, Sendable, AllOptional {
    public var mountId: String?
    public var path: String?
    public var org: String?
    public var repo: String?
    public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil) {
        self.mountId = mountId
        self.path = path
        self.org = org
        self.repo = repo
    }
    public init() {}

    public var mount: MountSelector { MountSelector(mountId: mountId, path: path) }
}

extension MountSelector {
    public static func id(_ mountId: String) -> Self { Self(mountId: mountId) }
    public static func path(_ path: String) -> Self { Self(path: path) }
}

extension RepoSelector {
    public static func id(_ mountId: String) -> Self { Self(mountId: mountId) }
    public static func path(_ path: String) -> Self { Self(path: path) }
    public static func repo(_ repo: String, org: String? = nil) -> Self { Self(org: org, repo: repo) }
}

/// Which org's credential acts; may be omitted when exactly one org is configured.
public struct OrgSelector: Codable, Sendable, AllOptional {
    public var org: String?
    public init(org: String? = nil) { self.org = org }
    public init() {}
}

/// The request side of paging: `cursor` from a previous page's `nextCursor`, `limit` 1…100.
public struct PageRequest: Codable, Sendable, AllOptional {
    public var cursor: String?
    public var limit: Int?
    public init(cursor: String? = nil, limit: Int? = nil) {
        self.cursor = cursor
        self.limit = limit
    }
    public init() {}
}

/// The result side of paging: where the next page starts, if there is one.
public struct PageInfo: Codable, Sendable {
    public var nextCursor: String?
    public var hasMore: Bool
    public init(nextCursor: String? = nil, hasMore: Bool) {
        self.nextCursor = nextCursor
        self.hasMore = hasMore
    }
}

/// Params or a result in two parts that share one JSON object: each part decodes from
/// and encodes into the same object, so nothing nests on the wire and a decoding error
/// names the same field as a flat struct would (the first part is read first). Members
/// of either part read through: `params.bookmark`, `params.cursor`, `result.hasMore`.
@dynamicMemberLookup
public struct Flat<First: Codable & Sendable, Second: Codable & Sendable>: Codable, Sendable {
    public var first: First
    public var second: Second
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    public init(from decoder: any Decoder) throws {
        first = try First(from: decoder)
        second = try Second(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try first.encode(to: encoder)
        try second.encode(to: encoder)
    }

    public subscript<T>(dynamicMember member: KeyPath<First, T>) -> T { first[keyPath: member] }
    public subscript<T>(dynamicMember member: KeyPath<Second, T>) -> T { second[keyPath: member] }
}

/// A method's own fields beside paging: `{…, cursor?, limit?}`.
public typealias Paged<Fields: Codable & Sendable> = Flat<Fields, PageRequest>
/// A page of results: `{items…, nextCursor, hasMore}`.
public typealias Listing<Items: Codable & Sendable> = Flat<Items, PageInfo>

/// A part whose fields are all optional, so `init()` sends none of them.
public protocol AllOptional { init() }

extension Flat: AllOptional where First: AllOptional, Second: AllOptional {
    public init() { self.init(First(), Second()) }
}

extension Flat where Second: AllOptional {
    public init(_ first: First) { self.init(first, Second()) }
}

extension Flat where First == MountSelector {
    public var selector: MountSelector { first }
}

extension Flat where First == RepoSelector {
    public var selector: RepoSelector { first }
}
