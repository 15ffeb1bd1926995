// The `mesa-client` executable: the command is MesaClientCLI's, which the release bundle's
// multi-call binary (mesa-multicall) runs too.
import MesaClientCLI

@main enum Main {
    static func main() async { await MesaClientProgram.main(arguments: Array(CommandLine.arguments.dropFirst())) }
}
