// The `mesa-server` executable: the command is MesaServerCLI's, which the release bundle's
// multi-call binary (mesa-multicall) runs too.
import MesaServerCLI

@main enum Main {
    static func main() async { await MesaServerProgram.main(arguments: Array(CommandLine.arguments.dropFirst())) }
}
