// The `mesa` executable: the command is MesaCLI's, which the release bundle's
// multi-call binary (mesa-multicall) runs too.
import MesaCLI

@main enum Main {
    static func main() async { await MesaProgram.main(arguments: Array(CommandLine.arguments.dropFirst())) }
}
