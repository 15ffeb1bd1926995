// mesa-multicall: the release bundle's one executable. mesad, mesa-client and mesa-server
// are links to it (its file is bin/mesa) and it runs the command its name, argv[0], says:
// one copy of the static Swift runtime, Foundation and ICU data instead of four.
// `mesa-multicall COMMAND ARGS…` runs COMMAND as well, for a copy without its links.
import Foundation
import MesaCLI
import MesaClientCLI
import MesaServerCLI
import MesadCLI

var arguments = Array(CommandLine.arguments.dropFirst())
var command = ((CommandLine.arguments.first ?? "") as NSString).lastPathComponent
if command == "mesa-multicall" {
    command = arguments.first ?? ""
    arguments = Array(arguments.dropFirst())
}
switch command {
case "mesad": await MesadProgram.main(arguments: arguments)
case "mesa": await MesaProgram.main(arguments: arguments)
case "mesa-client": await MesaClientProgram.main(arguments: arguments)
case "mesa-server": await MesaServerProgram.main(arguments: arguments)
default:
    let usage = """
        This executable is mesad, mesa, mesa-client and mesa-server in one: it runs the command \
        named by the name it is run as (a link called mesad, mesa, mesa-client or mesa-server), \
        or by its first argument when run as mesa-multicall (mesa-multicall mesad --help).
        """
    if command == "--help" || command == "-h" {
        print(usage)
        exit(0)
    }
    let reason = command.isEmpty ? "no command given" : "'\(command)' is not a mesa command"
    FileHandle.standardError.write(Data("mesa-multicall: \(reason).\n\(usage)\n".utf8))
    exit(2)
}
