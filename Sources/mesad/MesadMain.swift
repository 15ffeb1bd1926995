// The `mesad` executable: the command is MesadCLI's, which the release bundle's
// multi-call binary (mesa-multicall) runs too.
import MesadCLI

@main enum Main {
    static func main() async { await MesadProgram.main(arguments: Array(CommandLine.arguments.dropFirst())) }
}
