// Placeholder until its issue lands: say so plainly instead of pretending to work.
import Foundation

FileHandle.standardError.write(Data("mesa-client: not implemented yet; this build only provides the store (issue #2)\n".utf8))
exit(1)
