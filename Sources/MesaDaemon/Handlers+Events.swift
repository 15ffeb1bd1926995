import Foundation
import MesaAPI
import MesaProtocol
import Model
import RPC

/// `subscribe`, `unsubscribe` and `flush`: the methods editors and agent hooks use.
extension Daemon {
    func registerEventMethods() {
        dispatcher.register(Subscribe.self) { params, context in
            let names = params.events ?? MesaEvents.all
            if let unknown = names.first(where: { !MesaEvents.all.contains($0) }) {
                throw MesaError.invalid("unknown event '\(unknown)'; events are \(MesaEvents.all.joined(separator: ", "))")
            }
            var mountId: String?, org: String?, repo: String?
            if params.mountId == "tree" {
                mountId = "tree"
            } else if params.mountId != nil || params.path != nil {
                let mount = try self.mount(params.selector)
                (mountId, org, repo) = (mount.id, mount.fs.org, mount.fs.repo)
            }
            let selected = (mountId, org, repo)
            let id = try await blocking {
                self.events.subscribe(connection: context.connection.id, sender: context.peer, mountId: selected.0,
                                      org: selected.1, repo: selected.2, events: Set(names))
            }
            return Subscribe.Result(subscriptionId: id, mountId: mountId, events: MesaEvents.all.filter(names.contains))
        }
        dispatcher.register(Unsubscribe.self) { params, context in
            Unsubscribe.Result(removed: self.events.unsubscribe(connection: context.connection.id, id: params.subscriptionId))
        }
        dispatcher.register(Flush.self) { params, _ in
            let mount = try self.mount(params)
            return try await blocking {
                try mount.fs.flush()
                self.events.changed()
                return MountStatusInfo(mount.fs.status(), mountId: mount.id, path: mount.path)
            }
        }
    }
}
